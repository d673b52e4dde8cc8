# Copyright (C) ngx_ai_gateway contributors

# The Logs API (the management API's first resource) over the shared
# memory store: list, pages and result_info, every filter key and
# operator, the deprecated query arguments, search, orders, get, PATCH,
# DELETE by filters, the errors (7000, 7001, 7003, 7005, 10000) and the
# token check.  Scenarios run in the response body check, as in 110.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
our $J = JSON::PP->new->utf8->canonical;

sub gw {
    my ($path, $body, %h) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path";
    return $HT->request('POST', $url, {
        headers => { 'content-type' => 'application/json', %h },
        content => $body,
    });
}

sub uri {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

# raw($method, $path_after_ai_gateway, $query, $body, %headers)

sub raw {
    my ($method, $path, $query, $body, %h) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
            . "/client/v4/accounts/acct/ai-gateway/$path"
            . (defined $query ? "?$query" : '');
    my $r = $HT->request($method, $url, {
        headers => { %h, defined $body ? ('content-type' => 'application/json')
                                       : () },
        defined $body ? (content => $body) : (),
    });
    my $j = eval { $J->decode($r->{content}) };
    return ($j, $r);
}

sub list {
    my ($q) = @_;
    my ($j) = raw('GET', 'gateways/gw/logs', $q);
    return $j;
}

sub ids { [ map { $_->{id} } @{ $_[0]{result} || [] } ] }

sub filt {
    my ($key, $op, @v) = @_;
    return 'per_page=50&filters=' . uri($J->encode([
        { key => $key, operator => $op, value => \@v } ]));
}

sub count { my $j = list(filt(@_)); return $j->{success} ? $j->{result_info}{total_count} : "error: " . $J->encode($j) }

sub patch {
    my ($id, $body) = @_;
    my ($j, $r) = raw('PATCH', "gateways/gw/logs/$id", undef,
                      ref $body ? $J->encode($body) : $body);
    return ($j, $r);
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", "ai_gateway_log_zone logs:8m;\n"
                                     . "ai_gateway_cache_zone aic:1m;\n"
                                     . ($block->http_config // ''));

    my $api = $block->api // '';

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs logs;
        ai_gateway_cache aic;
        ai_gateway_cache_ttl 60;
    }
    location /other/ {
        ai_gateway other;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
    }
    location /client/v4/ {
        ai_gateway_api;
        $api
    }
END

    unless (defined $block->request) {
        $block->set_value("request", "GET /ping");
        $block->set_value("response_body", "ok");
    }

    if (!defined $block->no_error_log && !defined $block->error_log) {
        $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
    }
});

my %scenario;

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    my $name = $block->name;
    for my $k (sort keys %scenario) {
        if ($name =~ /\Q$k\E/) {
            mock_reset();
            $scenario{$k}->($name);
        }
    }
});

# seven records: four OpenAI (one failed, one cached), three Anthropic

sub seed {
    my @ids;
    my %h = ('user-agent' => 'seed-agent/1');
    my $oa = "/v1/acct/gw/openai/chat/completions";
    my $an = "/v1/acct/gw/anthropic/v1/messages";
    push @ids, gw($oa, '{"model":"gpt-4o","n":1}', %h,
                  'cf-aig-event-id' => 'ev-one',
                  'cf-aig-skip-cache' => 'true');
    sleep 0.02;
    push @ids, gw($oa, '{"model":"gpt-4o","n":2}', %h,
                  'x-mock' => 'status=500');
    sleep 0.02;
    push @ids, gw($oa, '{"model":"gpt-4o-mini","n":3}', %h,
                  'cf-aig-skip-cache' => 'true');
    sleep 0.02;
    push @ids, gw($an, '{"model":"claude-sonnet","n":4}', %h,
                  'x-mock' => 'fixture=anthropic/text.json',
                  'cf-aig-skip-cache' => 'true');
    sleep 0.02;
    push @ids, gw($an, '{"model":"claude-haiku","n":5}', %h,
                  'x-mock' => 'fixture=anthropic/text.json',
                  'cf-aig-skip-cache' => 'true');
    sleep 0.02;
    push @ids, gw($an, '{"model":"claude-haiku","n":6}', 'content-type' => 'text/plain',
                  'x-mock' => 'fixture=anthropic/text.json',
                  'cf-aig-skip-cache' => 'true');
    sleep 0.02;
    gw($oa, '{"model":"gpt-4o","n":7}');
    sleep 0.02;
    push @ids, gw($oa, '{"model":"gpt-4o","n":7}');
    return map { $_->{headers}{'cf-aig-log-id'} } @ids;
}

$scenario{'list and pages'} = sub {
    my $n = shift;
    my @ids = seed();                   # 7 kept, the 8th request cached
    my $j = list();
    ok($j->{success}, "$n - success");
    is_deeply($j->{errors}, [], "$n - errors: []");
    is_deeply($j->{messages}, [], "$n - messages: []");
    is($j->{result_info}{total_count}, 8, "$n - total_count");
    is($j->{result_info}{page}, 1, "$n - page 1");
    is($j->{result_info}{per_page}, 20, "$n - per_page 20 by default");
    is($j->{result}[0]{id}, $ids[-1], "$n - the newest first");
    $j = list('page=1&per_page=3');
    is($j->{result_info}{count}, 3, "$n - count");
    is($j->{result_info}{total_pages}, 3, "$n - total_pages");
    my @all = @{ ids(list('per_page=50')) };
    is_deeply(ids($j), [ @all[0 .. 2] ], "$n - page 1");
    is_deeply(ids(list('page=2&per_page=3')), [ @all[3 .. 5] ], "$n - page 2");
    is_deeply(ids(list('page=3&per_page=3')), [ @all[6 .. 7] ], "$n - page 3");
    $j = list('page=4&per_page=3');
    is_deeply($j->{result}, [], "$n - past the end: empty");
    is($j->{result_info}{total_count}, 8, "$n - still the total");
    is_deeply(ids(list('per_page=50&order_by_direction=asc')),
              [ reverse @all ], "$n - asc");
    is_deeply(ids(list('per_page=50&direction=asc')),
              [ reverse @all ], "$n - the deprecated direction");
    is_deeply(ids(list('per_page=2&page=2&order_by=created_at&order_by_direction=asc')),
              [ (reverse @all)[2, 3] ], "$n - asc, page 2");
};

$scenario{'every filter'} = sub {
    my $n = shift;
    my @ids = seed();
    is(count('provider', 'eq', 'anthropic'), 3, "$n - provider eq");
    is(count('provider', 'eq', 'anthropic', 'openai'), 8, "$n - eq, any value");
    is(count('provider', 'neq', 'anthropic'), 5, "$n - provider neq");
    is(count('provider', 'contains', 'THROP'), 3, "$n - contains, any case");
    is(count('model', 'eq', 'gpt-4o'), 4, "$n - model eq");
    is(count('model', 'contains', 'claude'), 3, "$n - model contains");
    is(count('model_type', 'eq', 'chat'), 8, "$n - model_type");
    is(count('id', 'eq', $ids[0]), 1, "$n - id eq");
    is(count('id', 'neq', $ids[0], $ids[1]), 6, "$n - id neq");
    is(count('success', 'eq', JSON::PP::false), 1, "$n - success eq false");
    is(count('success', 'eq', 'true'), 7, "$n - success as text");
    is(count('cached', 'eq', JSON::PP::true), 1, "$n - cached");
    is(count('request_type', 'eq', 'provider'), 8, "$n - request_type");
    is(count('request_content_type', 'eq', 'text/plain'), 1,
       "$n - request_content_type");
    is(count('response_content_type', 'contains', 'json'), 8,
       "$n - response_content_type");
    is(count('event_id', 'eq', 'ev-one'), 1, "$n - event_id");
    is(count('user_agent', 'contains', 'seed-agent'), 5, "$n - user_agent");
    is(count('duration', 'lt', 100000), 8, "$n - duration lt");
    is(count('duration', 'gt', 100000), 0, "$n - duration gt");
    # usage: the three Anthropic answers (12 in, 29 out) and the cache hit
    # (0, cost 0); the mock's OpenAI answers carry no usage: null
    is(count('tokens_in', 'eq', undef), 4, "$n - no usage: tokens_in null");
    is(count('tokens_in', 'eq', 12), 3, "$n - tokens_in eq");
    is(count('tokens', 'gt', 0), 3, "$n - tokens gt 0");
    is(count('tokens', 'eq', 0), 1, "$n - the cache hit's 0");
    is(count('tokens_out', 'neq', undef), 4, "$n - tokens_out neq null");
    is(count('cost', 'eq', undef), 4, "$n - no cost: null, not 0");
    is(count('cost', 'lt', 1), 4, "$n - null is not below 1");
    is(count('cost', 'gt', 0), 3, "$n - the priced answers");
    is(count('authentication', 'eq', JSON::PP::false), 8, "$n - authentication");
    is(count('wholesale', 'eq', JSON::PP::false), 8, "$n - wholesale");
    is(count('compatibilityMode', 'eq', JSON::PP::false), 8,
       "$n - compatibilityMode");
    is(count('dlp_action', 'eq', undef), 8, "$n - dlp_action");

    my $t = list("filters=" . uri('[{"key":"id","operator":"eq","value":["' . $ids[3] . '"]}]'))->{result}[0]{created_at};
    is(count('created_at', 'lt', $t), 3, "$n - created_at lt");
    is(count('created_at', 'gt', $t), 4, "$n - created_at gt");
    is(count('created_at', 'eq', $t), 1, "$n - created_at eq");

    # feedback and metadata, set by PATCH

    patch($ids[0], { feedback => 1, metadata => { user => 'alice', n => 5 } });
    patch($ids[1], { feedback => -1, metadata => { user => 'bob', ok => JSON::PP::true } });
    is(count('feedback', 'eq', 1), 1, "$n - feedback eq 1");
    is(count('feedback', 'eq', -1), 1, "$n - feedback eq -1");
    is(count('feedback', 'neq', 1), 7, "$n - feedback neq 1");
    is(count('feedback', 'eq', undef), 6, "$n - no feedback: null");
    is(count('feedback', 'gt', 0), 1, "$n - feedback gt 0");
    is(count('metadata.key', 'eq', 'user'), 2, "$n - metadata.key eq");
    is(count('metadata.key', 'eq', 'n'), 1, "$n - another key");
    is(count('metadata.key', 'neq', 'user'), 6, "$n - metadata.key neq");
    is(count('metadata.value', 'eq', 'alice'), 1, "$n - metadata.value eq");
    is(count('metadata.value', 'eq', '5'), 1, "$n - a number's text");
    is(count('metadata.value', 'eq', 'true'), 1, "$n - a boolean's");
    is(count('metadata.value', 'contains', 'LIC'), 1, "$n - contains");
    is(count('metadata.key', 'eq', undef), 6, "$n - no metadata: null");

    # several filters: all of them; both shapes together

    my $j = list('filters=' . uri('[{"key":"provider","operator":"eq","value":["openai"]},'
                                  . '{"key":"model","operator":"eq","value":["gpt-4o"]}]'));
    is($j->{result_info}{total_count}, 4, "$n - two filters: both");
    $j = list('filters.key=provider&filters.operator=eq&filters.value=openai'
              . '&filters.key=success&filters.operator=eq&filters.value=false');
    is($j->{result_info}{total_count}, 1, "$n - the SDK's encoding");
    $j = list('filters.key=model&filters.operator=eq&filters.value=claude-haiku'
              . '&filters.value=claude-sonnet');
    is($j->{result_info}{total_count}, 3, "$n - repeated values");
    $j = list('filters=' . uri('{"key":"provider","operator":"eq","value":"anthropic"}'));
    is($j->{result_info}{total_count}, 3, "$n - one object, one value");

    # filtered pages

    $j = list('per_page=2&page=2&filters='
              . uri('[{"key":"provider","operator":"eq","value":["openai"]}]'));
    is($j->{result_info}{count}, 2, "$n - a filtered page");
    is($j->{result_info}{total_count}, 5, "$n - of the filtered total");
    is($j->{result_info}{total_pages}, 3, "$n - and its pages");

    # search and the deprecated arguments

    is(list('search=HAIKU')->{result_info}{total_count}, 2, "$n - search");
    is(list('search=alice')->{result_info}{total_count}, 1,
       "$n - search in metadata");
    is(list('provider=anthropic')->{result_info}{total_count}, 3,
       "$n - provider=");
    is(list('model=gpt-4o&success=false')->{result_info}{total_count}, 1,
       "$n - model= and success=");
    is(list('cached=true')->{result_info}{total_count}, 1, "$n - cached=");
    is(list('min_duration=0&max_duration=100000')->{result_info}{total_count},
       8, "$n - min_duration, max_duration");
    is(list('feedback=1')->{result_info}{total_count}, 1, "$n - feedback=1");
    is(list('feedback=0')->{result_info}{total_count}, 1,
       "$n - feedback=0, thumbs down");
    is(list("start_date=" . uri($t))->{result_info}{total_count}, 5,
       "$n - start_date, inclusive");
    is(list("end_date=" . uri($t))->{result_info}{total_count}, 4,
       "$n - end_date, inclusive");
    is(list('min_tokens_in=1')->{result_info}{total_count}, 3,
       "$n - min_tokens_in");
    is(list('min_tokens_in=13')->{result_info}{total_count}, 0,
       "$n - min_tokens_in above all");
    is(list('request_content_type=text%2Fplain')->{result_info}{total_count},
       1, "$n - request_content_type=");
};

$scenario{'refused queries'} = sub {
    my $n = shift;
    my ($j, $r) = raw('GET', 'gateways/gw/logs',
                      'filters=' . uri('[{"key":"nope","operator":"eq","value":["x"]}]'));
    is($r->{status}, 400, "$n - 400");
    ok(!$j->{success}, "$n - success false");
    is($j->{errors}[0]{code}, 7001, "$n - code 7001");
    like($j->{errors}[0]{message},
         qr/^Invalid enum value\. Expected 'id' \| 'created_at' \| .* \| 'user_agent', received 'nope'$/,
         "$n - the hosted API's message");
    is($j->{result}, undef, "$n - result null");
    for my $q ('filters=' . uri('[{"key":"provider","operator":"like","value":["x"]}]'),
               'filters=' . uri('[{"key":"cost","operator":"gt","value":["cheap"]}]'),
               'filters=' . uri('[{"key":"cost","operator":"contains","value":["1"]}]'),
               'filters=' . uri('[{"key":"success","operator":"eq","value":["maybe"]}]'),
               'filters=' . uri('[{"key":"created_at","operator":"gt","value":["yesterday"]}]'),
               'filters=' . uri('[{"key":"duration","operator":"gt","value":[1,2]}]'),
               'filters=' . uri('[{"key":"provider","operator":"eq","value":[]}]'),
               'filters=' . uri('[{"key":"provider","operator":"eq","value":[{"a":1}]}]'),
               'filters=' . uri('[{"key":"provider","operator":"eq"'),
               'filters.operator=eq&filters.value=x',
               'filters.key=provider&filters.value=x',
               'filters.key=foo&filters.operator=eq&filters.value=x',
               'page=0', 'page=x', 'per_page=51', 'per_page=0',
               'order_by=cheapest', 'order_by_direction=up',
               'min_cost=abc', 'feedback=2')
    {
        ($j, $r) = raw('GET', 'gateways/gw/logs', $q);
        is($r->{status}, 400, "$n - $q: 400");
        is($j->{errors}[0]{code}, 7001, "$n - $q: 7001");
    }
    ($j, $r) = raw('GET', 'gateways/gw/logs',
                   join '&', map { "a$_=1" } 1 .. 70);
    is($r->{status}, 400, "$n - too many arguments");
    ($j, $r) = raw('GET', 'gateways/gw/logs',
                   'filters=' . uri($J->encode([ map { { key => 'id', operator => 'neq', value => ['x'] } } 1 .. 40 ])));
    is($r->{status}, 400, "$n - too many filters");
};

$scenario{'orders'} = sub {
    my $n = shift;
    my @ids = seed();
    my $j = list('order_by=provider&order_by_direction=asc&per_page=50');
    is_deeply([ map { $_->{provider} } @{ $j->{result} } ],
              [ ('anthropic') x 3, ('openai') x 5 ], "$n - provider asc");
    is($j->{result_info}{total_count}, 8, "$n - the total");
    $j = list('order_by=model&order_by_direction=desc&per_page=50');
    is_deeply([ map { $_->{model} } @{ $j->{result} } ],
              [ 'gpt-4o-mini', ('gpt-4o') x 4, 'claude-sonnet',
                ('claude-haiku') x 2 ], "$n - model desc");
    my @p = map { $_->{model} } @{ list('order_by=model&per_page=3&page=2')->{result} };
    is_deeply(\@p, [ 'gpt-4o', 'gpt-4o', 'claude-sonnet' ],
              "$n - another order, page 2");
    $j = list('order_by=success&order_by_direction=asc&per_page=1');
    ok(!$j->{result}[0]{success}, "$n - success asc: the failure first");
    $j = list('order_by=cached&order_by_direction=desc&per_page=1');
    ok($j->{result}[0]{cached}, "$n - cached desc: the hit first");
    $j = list('order_by=provider&order_by_direction=asc&per_page=50'
              . '&filters=' . uri('[{"key":"model","operator":"contains","value":["claude"]}]'));
    is($j->{result_info}{total_count}, 3, "$n - ordered and filtered");
    my ($e, $r) = raw('GET', 'gateways/gw/logs',
                      'order_by=provider&per_page=50&page=201');
    is($r->{status}, 400, "$n - a page too deep in another order");
    is(list('order_by=model&page=5&per_page=5')->{result_info}{count}, 0,
       "$n - past the end: empty");
    is(list('order_by=cost&per_page=50')->{result_info}{count}, 8,
       "$n - by cost, none known");
    is(list('order_by=feedback&per_page=50')->{result_info}{count}, 8,
       "$n - by feedback");
};

$scenario{'get and patch'} = sub {
    my $n = shift;
    my @ids = seed();
    my ($j, $r) = raw('GET', "gateways/gw/logs/$ids[0]");
    ok($j->{success}, "$n - get");
    is($j->{result}{id}, $ids[0], "$n - the log");
    is($j->{result}{feedback}, 0, "$n - no feedback yet");
    is($j->{result}{score}, undef, "$n - no score");
    ok(exists $j->{result}{request_head}, "$n - with its heads");
    ($j, $r) = raw('GET', 'gateways/gw/logs/01ARZ3NDEKTSV4RRFFQ69G5FAV');
    is($r->{status}, 404, "$n - an unknown log: 404");
    is($j->{errors}[0]{code}, 7003, "$n - code 7003");
    ($j, $r) = raw('GET', 'gateways/gw/logs/not-an-id');
    is($r->{status}, 404, "$n - not a log id: 404");
    ($j, $r) = raw('GET', 'gateways/gw/logs/01ARZ3NDEKTSV4RRFFQ69G5FAV/request');
    is($r->{status}, 404, "$n - its payload: 404");

    ($j, $r) = patch($ids[0], { feedback => 1, score => 90,
                                metadata => { user => 'u1', n => 3, b => JSON::PP::false } });
    is($r->{status}, 200, "$n - PATCH");
    ok($j->{success}, "$n - success");
    ($j) = raw('GET', "gateways/gw/logs/$ids[0]");
    is($j->{result}{feedback}, 1, "$n - feedback 1");
    is($j->{result}{score}, 90, "$n - score 90");
    is_deeply($j->{result}{metadata}, { user => 'u1', n => 3, b => JSON::PP::false },
              "$n - metadata, an object");
    patch($ids[0], { feedback => -1 });
    ($j) = raw('GET', "gateways/gw/logs/$ids[0]");
    is($j->{result}{feedback}, -1, "$n - feedback -1");
    is($j->{result}{score}, 90, "$n - the score let be");
    is($j->{result}{metadata}{user}, 'u1', "$n - the metadata let be");
    patch($ids[0], { feedback => 0, score => undef, metadata => undef });
    ($j) = raw('GET', "gateways/gw/logs/$ids[0]");
    is($j->{result}{feedback}, 0, "$n - feedback 0: not evaluated");
    is($j->{result}{score}, undef, "$n - score null");
    is($j->{result}{metadata}, undef, "$n - metadata null");
    patch($ids[0], { score => 0, metadata => { a => 1, b => 2, c => 3, d => 4, e => 5, f => 6 } });
    ($j) = raw('GET', "gateways/gw/logs/$ids[0]");
    is($j->{result}{score}, 0, "$n - score 0");
    is(scalar keys %{ $j->{result}{metadata} }, 5, "$n - five entries kept");
    ($j) = raw('GET', 'gateways/gw/logs', "filters=" . uri($J->encode([{ key => 'id', operator => 'eq', value => [$ids[0]] }])));
    is($j->{result}[0]{score}, 0, "$n - the list shows it too");

    for my $bad ({ feedback => 2 }, { feedback => 0.5 }, { feedback => 'yes' },
                 { score => 101 }, { score => -1 }, { score => 'a' },
                 { metadata => { a => { b => 1 } } }, { metadata => [1] },
                 { metadata => 'x' }, '[1]', 'not json', '')
    {
        my $t = ref $bad ? $J->encode($bad) : "'$bad'";
        ($j, $r) = patch($ids[1], $bad);
        is($r->{status}, 400, "$n - $t: 400");
        is($j->{errors}[0]{code}, 7001, "$n - $t: 7001");
    }
    ($j, $r) = patch('01ARZ3NDEKTSV4RRFFQ69G5FAV', { feedback => 1 });
    is($r->{status}, 404, "$n - PATCH an unknown log: 404");
    ($j, $r) = patch($ids[1], '{"feedback":1,' . ('"x":1,' x 20000) . '"y":1}');
    is($r->{status}, 400, "$n - a body too large");
};

$scenario{'delete'} = sub {
    my $n = shift;
    my @ids = seed();
    my ($j, $r) = raw('DELETE', 'gateways/gw/logs',
                      filt('provider', 'eq', 'anthropic'));
    is($r->{status}, 200, "$n - DELETE");
    ok($j->{success}, "$n - success");
    is($j->{result}{deleted}, 3, "$n - three deleted");
    is(list()->{result_info}{total_count}, 5, "$n - five left");
    ($j) = raw('DELETE', 'gateways/gw/logs',
               'limit=2&order_by=created_at&order_by_direction=asc');
    is($j->{result}{deleted}, 2, "$n - a limit");
    my @left = @{ ids(list()) };
    is(scalar @left, 3, "$n - three left");
    ok(!(grep { $_ eq $ids[0] || $_ eq $ids[1] } @left),
       "$n - the two oldest went");
    ok((grep { $_ eq $ids[2] } @left) && (grep { $_ eq $ids[6] } @left),
       "$n - the newer stay");
    ($j) = raw('DELETE', 'gateways/gw/logs',
               'limit=1&order_by=model&order_by_direction=desc');
    is($j->{result}{deleted}, 1, "$n - by another order");
    ok(!(grep { $_ eq $ids[2] } @{ ids(list()) }),
       "$n - the greatest model went (gpt-4o-mini)");
    ($j) = raw('DELETE', 'gateways/gw/logs');
    is($j->{result}{deleted}, 2, "$n - all the rest");
    is(list()->{result_info}{total_count}, 0, "$n - none left");
    ($j, $r) = raw('DELETE', 'gateways/gw/logs', 'limit=0');
    is($r->{status}, 400, "$n - limit 0: 400");
};

$scenario{'many records'} = sub {
    my $n = shift;
    for my $i (1 .. 700) {
        gw("/v1/acct/gw/openai/chat/completions",
           qq({"model":"m@{[ $i % 7 ]}","i":$i}), 'cf-aig-skip-cache' => 'true');
    }
    my $j = list('per_page=50');
    is($j->{result_info}{total_count}, 700, "$n - all of them");
    $j = list(filt('model', 'eq', 'm3') . '&page=2');
    is($j->{result_info}{total_count}, 100, "$n - across batches, filtered");
    is($j->{result_info}{count}, 50, "$n - a second page of them");
    $j = list('per_page=50&page=14');
    is($j->{result_info}{count}, 50, "$n - the last page");
    is(list('per_page=50&page=15')->{result_info}{count}, 0, "$n - then none");
    # a log id's time is when it was made, created_at the request's
    # start: the order is created_at's, then the ids'
    my @seen;
    for my $p (1 .. 14) {
        push @seen, map { "$_->{created_at} $_->{id}" } @{
            list("per_page=50&page=$p&order_by_direction=asc")->{result} };
    }
    my %u = map { $_ => 1 } @seen;
    is(scalar keys %u, 700, "$n - pages neither skip nor repeat");
    is_deeply(\@seen, [ sort @seen ], "$n - in created_at, id order");
    $j = list('order_by=model&order_by_direction=asc&per_page=50&page=3');
    is($j->{result}[0]{model}, 'm1', "$n - another order across batches");
    ($j) = raw('DELETE', 'gateways/gw/logs', filt('model', 'eq', 'm0'));
    is($j->{result}{deleted}, 100, "$n - a delete across batches");
    is(list()->{result_info}{total_count}, 600, "$n - the rest kept");
    ($j) = raw('DELETE', 'gateways/gw/logs');
    is($j->{result}{deleted}, 600, "$n - then all");
};

$scenario{'routes'} = sub {
    my $n = shift;
    my ($j, $r) = raw('GET', 'gateways/gw/nothing');
    is($r->{status}, 404, "$n - an unknown resource");
    is($j->{errors}[0]{code}, 7000, "$n - code 7000");
    is($j->{errors}[0]{message}, 'No route for that URI', "$n - message");
    ($j, $r) = raw('POST', 'gateways/gw/logs', undef, '{}');
    is($r->{status}, 405, "$n - POST on logs: 405");
    is($j->{errors}[0]{code}, 7005, "$n - code 7005");
    ($j, $r) = raw('GET', 'gateways/other/logs');
    is($r->{status}, 404, "$n - a gateway without logs");
    is($j->{errors}[0]{code}, 7003, "$n - code 7003");
    ($j, $r) = raw('GET', 'gateways/nogw/logs');
    is($r->{status}, 404, "$n - an unknown gateway");
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/client/v4/accounts/other/ai-gateway/gateways/gw/logs";
    $r = $HT->get($url);
    is($r->{status}, 404, "$n - another account");
    $r = $HT->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/client/v4/accounts/acct/ai-gateway/gateways/gw/logs/");
    is($r->{status}, 200, "$n - a trailing slash");
    $r = $HT->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/client/v4/zones");
    is($r->{status}, 404, "$n - not the account's API");
    $r = $HT->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/client/v4/accounts/acct/ai-gateway/gateways/g%20w/logs");
    is($r->{status}, 404, "$n - an odd gateway name");
    like($r->{headers}{'content-type'}, qr{^application/json}, "$n - JSON");
};

$scenario{'token'} = sub {
    my $n = shift;
    my ($j, $r) = raw('GET', 'gateways/gw/logs');
    is($r->{status}, 401, "$n - no token: 401");
    is($j->{errors}[0]{code}, 10000, "$n - code 10000");
    is($j->{errors}[0]{message}, 'Authentication error', "$n - message");
    ($j, $r) = raw('GET', 'gateways/gw/logs', undef, undef,
                   authorization => 'Bearer wrong');
    is($r->{status}, 401, "$n - a wrong token: 401");
    ($j, $r) = raw('GET', 'gateways/gw/logs', undef, undef,
                   authorization => 'Basic dG9rZW4tb25l');
    is($r->{status}, 401, "$n - not a bearer token: 401");
    ($j, $r) = raw('GET', 'gateways/gw/logs', undef, undef,
                   authorization => 'Bearer token-one');
    is($r->{status}, 200, "$n - the first token");
    ($j, $r) = raw('GET', 'gateways/gw/logs', undef, undef,
                   authorization => 'bearer token-two');
    is($r->{status}, 200, "$n - the second, any case of Bearer");
    ($j, $r) = raw('GET', 'gateways/nogw/logs');
    is($r->{status}, 401, "$n - checked before anything else");
};

run_tests();

__DATA__

=== TEST 1: list and pages



=== TEST 2: every filter



=== TEST 3: refused queries



=== TEST 4: orders



=== TEST 5: get and patch



=== TEST 6: delete



=== TEST 7: many records



=== TEST 8: routes



=== TEST 9: token
--- user_files
>>> tokens
token-one

token-two
--- api
ai_gateway_api_token_file $TEST_NGINX_HTML_DIR/tokens;



=== TEST 10: a token file that is not there
--- api
ai_gateway_api_token_file /nonexistent/tokens;
--- must_die
--- error_log
cannot open the API token file



=== TEST 11: an empty token file
--- user_files
>>> empty

--- api
ai_gateway_api_token_file $TEST_NGINX_HTML_DIR/empty;
--- must_die
--- error_log
has no token
