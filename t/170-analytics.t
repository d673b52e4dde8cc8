# Copyright (C) ngx_ai_gateway contributors

# Analytics (issue #13, item 4): the series of ai_gateway_analytics_zone,
# counted in the log phase, served by the management API as
# GET .../gateways/{id}/analytics.  A scripted mix of requests against the
# mock provider (plain, streamed, cached, failed, refused, an odd model
# name) gives exact totals per provider and model, the same sums the Logs
# API gives for the same requests; the bound on combinations sends new
# models to "__other__"; the API's refusals; a reload keeps the counts;
# the dashboard's files are served with their headers.  Scenarios run in
# the response body check, as in 111.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();
master_on();

our $HT = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
our $J = JSON::PP->new->utf8->canonical;

sub base { "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}" }

sub gw {
    my ($path, $body, %h) = @_;
    return $HT->request('POST', base() . $path, {
        headers => { 'content-type' => 'application/json', %h },
        content => ref $body ? $J->encode($body) : $body,
    });
}

sub api {
    my ($path, %h) = @_;
    my $r = $HT->request('GET', base()
                         . "/client/v4/accounts/acct/ai-gateway/$path",
                         { headers => { %h } });
    my $j = eval { $J->decode($r->{content}) };
    return ($j, $r);
}

sub chat {
    my ($model, %more) = @_;
    return { model => $model,
             messages => [ { role => 'user', content => 'hi' } ], %more };
}

# the groups of an answer as "provider|model" => totals
sub groups {
    my $j = shift;
    return { map { (join('|', $_->{provider},
                         exists $_->{model} ? $_->{model} : ())
                    => $_->{totals}) } @{ $j->{result}{groups} } };
}

# a number the way the test compares it (costs are sums of doubles)
sub r9 { sprintf '%.9f', shift }

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<END . ($block->http_config // ''));
ai_gateway_log_zone logs:8m;
ai_gateway_cache_zone aic:1m;
ai_gateway_analytics_zone an:4m bucket=1m keep=1h;
ai_gateway_analytics_zone small:1m bucket=10s keep=1m max=4;
END

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs logs;
        ai_gateway_cache aic;
        ai_gateway_cache_ttl 60;
        ai_gateway_analytics an;
    }
    location /v1/acct/bound/ {
        ai_gateway bound account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs logs;
        ai_gateway_analytics small;
    }
    location /v1/acct/quiet/ {
        ai_gateway quiet account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs logs;
    }
    location /client/v4/ {
        ai_gateway_api;
        ${\ ($block->api // '')}
    }
    location /dashboard/ {
        ai_gateway_dashboard api=/client/v4/ account=acct gateway=gw;
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

my $V = '/v1/acct/gw';

# the mix: eight requests, what each adds is in the comments
sub mix {
    my @skip = ('cf-aig-skip-cache' => 'true');

    # openai gpt-4.1-nano: 16 in, 363 out, $0.0001468
    gw("$V/openai/chat/completions", chat('gpt-4.1-nano'),
       'x-mock' => 'fixture=openai-chat/text.json', @skip);
    # the same, cacheable: a miss, then a hit (cached, its usage again)
    gw("$V/openai/chat/completions", chat('gpt-4.1-nano', n => 2),
       'x-mock' => 'fixture=openai-chat/text.json');
    gw("$V/openai/chat/completions", chat('gpt-4.1-nano', n => 2),
       'x-mock' => 'fixture=openai-chat/text.json');
    # anthropic claude-sonnet-4-5: 12 in, 29 out, $0.000471; streamed:
    # 12 in, 30 out, $0.000486
    gw("$V/anthropic/v1/messages", chat('claude-sonnet-4-5'),
       'x-mock' => 'fixture=anthropic/text.json', @skip);
    gw("$V/anthropic/v1/messages",
       chat('claude-sonnet-4-5', stream => JSON::PP::true),
       'x-mock' => 'fixture=anthropic/text.chunks.txt;interval=2', @skip);
    # a provider's 500: an error, no usage
    gw("$V/openai/chat/completions", chat('gpt-4o'),
       'x-mock' => 'status=500', @skip);
    # a provider the gateway does not know: refused, "__other__"
    gw("$V/nope/chat/completions", chat('gpt-4o'), @skip);
    # a model name of control bytes: "__other__"
    gw("$V/openai/chat/completions", chat("bad\x01model"),
       'x-mock' => 'status=400', @skip);
}

$scenario{'the mix'} = sub {
    my $n = shift;
    my $t0 = time;
    mix();
    sleep 0.3;

    my ($j, $r) = api('gateways/gw/analytics');
    is($r->{status}, 200, "$n - 200");
    ok($j->{success}, "$n - success");
    my $res = $j->{result};
    is($res->{gateway_id}, 'gw', "$n - gateway_id");
    is($res->{bucket}, 60, "$n - bucket: 1m");
    is($res->{group_by}, 'model', "$n - group_by model by default");
    is($res->{end} % 60, 0, "$n - end: a bucket's start");
    is($res->{end} - $res->{start}, 59 * 60, "$n - keep=1h: 60 buckets");
    ok(!$res->{overflow}, "$n - no overflow");

    my $t = $res->{totals};
    is($t->{requests}, 8, "$n - requests");
    is($t->{errors}, 2 + 1, "$n - errors: 500, 400 and the refused one");
    is($t->{cached}, 1, "$n - cached");
    # a cache hit reports no usage (nor does its log record): none counted
    is($t->{tokens_in}, 16 * 2 + 12 + 12, "$n - tokens_in");
    is($t->{tokens_out}, 363 * 2 + 29 + 30, "$n - tokens_out");

    my $g = groups($j);
    is_deeply([ sort keys %$g ],
              [ '__other__|', 'anthropic|claude-sonnet-4-5',
                'openai|__other__', 'openai|gpt-4.1-nano', 'openai|gpt-4o' ],
              "$n - the groups");
    my $nano = $g->{'openai|gpt-4.1-nano'};
    is_deeply([ @$nano{qw(requests errors cached tokens_in tokens_out)} ],
              [ 3, 0, 1, 32, 726 ], "$n - gpt-4.1-nano");
    is(r9($nano->{cost}), r9(0.0001468 * 2), "$n - gpt-4.1-nano: a hit costs 0");
    my $cl = $g->{'anthropic|claude-sonnet-4-5'};
    is_deeply([ @$cl{qw(requests errors cached tokens_in tokens_out)} ],
              [ 2, 0, 0, 24, 59 ], "$n - claude");
    is(r9($cl->{cost}), r9(0.000471 + 0.000486), "$n - claude cost");
    is_deeply([ @{ $g->{'openai|gpt-4o'} }{qw(requests errors tokens_in)} ],
              [ 1, 1, 0 ], "$n - gpt-4o: the 500");
    # refused before its body was read: no model
    is_deeply([ @{ $g->{'__other__|'} }{qw(requests errors)} ],
              [ 1, 1 ], "$n - the unknown provider");
    is_deeply([ @{ $g->{'openai|__other__'} }{qw(requests errors)} ],
              [ 1, 1 ], "$n - the model of control bytes");
    is(r9($t->{cost}), r9(0.0001468 * 2 + 0.000471 + 0.000486),
       "$n - total cost");

    # each group's buckets sum to its totals, at bucket times in range
    for my $grp (@{ $res->{groups} }) {
        my %sum;
        for my $p (@{ $grp->{series} }) {
            ok($p->{time} % 60 == 0 && $p->{time} >= $res->{start}
               && $p->{time} <= $res->{end}, "$n - a bucket's time");
            $sum{$_} += $p->{$_} for qw(requests errors cached tokens_in
                                        tokens_out);
        }
        is_deeply(\%sum, { map { $_ => $grp->{totals}{$_} }
                           qw(requests errors cached tokens_in tokens_out) },
                  "$n - $grp->{provider}|$grp->{model}: buckets sum up");
    }

    # the same sums as the Logs API's records of the same requests
    my ($l) = api('gateways/gw/logs?per_page=50');
    my ($tin, $tout, $cost) = (0, 0, 0);
    for my $rec (@{ $l->{result} }) {
        $tin += $rec->{tokens_in} // 0;
        $tout += $rec->{tokens_out} // 0;
        $cost += $rec->{cost} // 0;
    }
    is($l->{result_info}{total_count}, 8, "$n - 8 log records");
    is($tin, $t->{tokens_in}, "$n - tokens_in as the logs");
    is($tout, $t->{tokens_out}, "$n - tokens_out as the logs");
    is(r9($cost), r9($t->{cost}), "$n - cost as the logs");

    # by provider
    ($j) = api('gateways/gw/analytics?group_by=provider');
    is($j->{result}{group_by}, 'provider', "$n - group_by provider");
    $g = groups($j);
    is_deeply([ sort keys %$g ], [ '__other__', 'anthropic', 'openai' ],
              "$n - by provider: the groups");
    is($g->{openai}{requests}, 5, "$n - openai: 5 requests");
    ok(!(grep { exists $_->{model} } @{ $j->{result}{groups} }),
       "$n - no model key");

    # a range before the requests: nothing
    my $before = int($t0) - 3600;
    ($j) = api("gateways/gw/analytics?start=0&end=$before");
    is($j->{result}{totals}{requests}, 0, "$n - an earlier range: 0");
    is_deeply($j->{result}{groups}, [], "$n - no group with requests");

    # another gateway's series are its own
    ($j) = api('gateways/bound/analytics');
    is($j->{result}{totals}{requests}, 0, "$n - gateway bound: nothing");
};

$scenario{'the bound'} = sub {
    my $n = shift;
    # zone "small": max=4, the first series for everything, one in
    # reserve; m1 and m2 take the two left, the others go to
    # openai|__other__, anthropic's new model to the first series
    for my $m (qw(m1 m2 m3 m4 m5)) {
        gw("/v1/acct/bound/openai/chat/completions", chat($m));
    }
    gw("/v1/acct/bound/anthropic/v1/messages", chat('c1'));
    # a model seen before still has its series
    gw("/v1/acct/bound/openai/chat/completions", chat('m1'));
    sleep 0.3;

    my ($j, $r) = api('gateways/bound/analytics');
    is($r->{status}, 200, "$n - 200");
    is($j->{result}{bucket}, 10, "$n - bucket=10s");
    is($j->{result}{end} - $j->{result}{start}, 50, "$n - keep=1m: 6 buckets");
    my $g = groups($j);
    is_deeply({ map { $_ => $g->{$_}{requests} } keys %$g },
              { 'openai|m1' => 2, 'openai|m2' => 1, 'openai|__other__' => 3 },
              "$n - two models, then __other__");
    is($j->{result}{totals}{requests}, 6, "$n - the gateway's total");
    ok($j->{result}{overflow}, "$n - overflow: past the reserve too");
};

$scenario{'refused queries'} = sub {
    my $n = shift;
    my ($j, $r) = api('gateways/gw/analytics?group_by=gateway');
    is($r->{status}, 400, "$n - group_by gateway: 400");
    is($j->{errors}[0]{code}, 7001, "$n - 7001");
    like($j->{errors}[0]{message}, qr/group_by/, "$n - says group_by");
    ($j, $r) = api('gateways/gw/analytics?start=yesterday');
    is($r->{status}, 400, "$n - start not a number: 400");
    like($j->{errors}[0]{message}, qr/start/, "$n - says start");
    ($j, $r) = api('gateways/gw/analytics?end=-5');
    is($r->{status}, 400, "$n - a negative end: 400");
    ($j, $r) = api('gateways/gw/analytics?start=200&end=100');
    is($r->{status}, 400, "$n - start after end: 400");
    ($j, $r) = api('gateways/gw/analytics?start=99999999999999');
    is($r->{status}, 400, "$n - too long a number: 400");
    ($j, $r) = api('gateways/quiet/analytics');
    is($r->{status}, 404, "$n - a gateway without analytics: 404");
    is($j->{errors}[0]{code}, 7003, "$n - 7003");
    ($j, $r) = api('gateways/nogw/analytics');
    is($r->{status}, 404, "$n - no such gateway: 404");
    $r = $HT->request('DELETE', base()
                      . '/client/v4/accounts/acct/ai-gateway/gateways/gw/'
                      . 'analytics');
    is($r->{status}, 405, "$n - DELETE: 405");
};

$scenario{'token'} = sub {
    my $n = shift;
    my ($j, $r) = api('gateways/gw/analytics');
    is($r->{status}, 401, "$n - no token: 401");
    ($j, $r) = api('gateways/gw/analytics',
                   authorization => 'Bearer token-one');
    is($r->{status}, 200, "$n - the token: 200");
};

$scenario{'reload keeps'} = sub {
    my $n = shift;
    gw("$V/openai/chat/completions", chat('gpt-4.1-nano'),
       'x-mock' => 'fixture=openai-chat/text.json',
       'cf-aig-skip-cache' => 'true') for 1 .. 3;
    sleep 0.3;
    my ($j) = api('gateways/gw/analytics');
    is($j->{result}{totals}{requests}, 3, "$n - 3 before");
    open my $fh, '<', "$ENV{TEST_NGINX_SERVROOT}/logs/nginx.pid"
        or die "pid: $!";
    my $pid = <$fh>;
    chomp $pid;
    kill 'HUP', $pid;
    sleep 1.5;
    gw("$V/openai/chat/completions", chat('gpt-4.1-nano'),
       'x-mock' => 'fixture=openai-chat/text.json',
       'cf-aig-skip-cache' => 'true');
    sleep 0.3;
    ($j) = api('gateways/gw/analytics');
    is($j->{result}{totals}{requests}, 4, "$n - 4 after the reload");

    # another keep: the zone starts again, laid out anew
    my $conf = "$ENV{TEST_NGINX_SERVROOT}/conf/nginx.conf";
    open $fh, '<', $conf or die "$conf: $!";
    my $text = do { local $/; <$fh> };
    close $fh;
    $text =~ s/an:4m bucket=1m keep=1h/an:4m bucket=1m keep=2h/ or die;
    open $fh, '>', $conf or die "$conf: $!";
    print $fh $text;
    close $fh;
    kill 'HUP', $pid;
    # the new workers answer once the range is two hours (valgrind: slow)
    for (1 .. 100) {
        sleep 0.2;
        ($j) = api('gateways/gw/analytics');
        last if $j && $j->{result}
                && $j->{result}{end} - $j->{result}{start} == 119 * 60;
    }
    is($j->{result}{totals}{requests}, 0, "$n - another keep: from zero");
    is($j->{result}{end} - $j->{result}{start}, 119 * 60,
       "$n - keep=2h: 120 buckets");
    gw("$V/openai/chat/completions", chat('gpt-4.1-nano'),
       'x-mock' => 'fixture=openai-chat/text.json',
       'cf-aig-skip-cache' => 'true');
    sleep 0.3;
    ($j) = api('gateways/gw/analytics');
    is($j->{result}{totals}{requests}, 1, "$n - and counts again");
};

$scenario{'dashboard files'} = sub {
    my $n = shift;
    my $r = $HT->get(base() . '/dashboard/');
    is($r->{status}, 200, "$n - the page");
    is($r->{headers}{'content-type'}, 'text/html; charset=utf-8',
       "$n - text/html");
    like($r->{content}, qr/<script src="app\.js"/, "$n - its script");
    unlike($r->{content}, qr/<script>/, "$n - no inline script");
    my $csp = $r->{headers}{'content-security-policy'} // '';
    like($csp, qr/default-src 'none'/, "$n - CSP: nothing by default");
    like($csp, qr/script-src 'self';/, "$n - CSP: its own script only");
    like($csp, qr/frame-ancestors 'none'/, "$n - CSP: no frame");
    is($r->{headers}{'cache-control'}, 'no-cache', "$n - no-cache");
    is($r->{headers}{'x-content-type-options'}, 'nosniff', "$n - nosniff");
    my $etag = $r->{headers}{etag};
    like($etag, qr/^"[0-9a-f]{32}"$/, "$n - an ETag");

    $r = $HT->get(base() . '/dashboard/', {
        headers => { 'if-none-match' => $etag } });
    is($r->{status}, 304, "$n - If-None-Match: 304");

    $r = $HT->get(base() . '/dashboard/index.html');
    is($r->{headers}{etag}, $etag, "$n - index.html is the page");
    $r = $HT->get(base() . '/dashboard/app.js');
    is($r->{status}, 200, "$n - app.js");
    is($r->{headers}{'content-type'}, 'text/javascript; charset=utf-8',
       "$n - text/javascript");
    $r = $HT->get(base() . '/dashboard/app.css');
    is($r->{headers}{'content-type'}, 'text/css; charset=utf-8',
       "$n - text/css");

    $r = $HT->get(base() . '/dashboard/config.json');
    is($r->{headers}{'content-type'}, 'application/json', "$n - config");
    is_deeply(eval { $J->decode($r->{content}) },
              { api => '/client/v4', account => 'acct', gateway => 'gw' },
              "$n - config.json: the directive's, no trailing /");

    is($HT->get(base() . '/dashboard/nope.js')->{status}, 404,
       "$n - another name: 404");
    is($HT->get(base() . '/dashboard/..%2fapp.js')->{status}, 404,
       "$n - no way out");
    is($HT->request('POST', base() . '/dashboard/')->{status}, 405,
       "$n - POST: 405");
};

run_tests();

__DATA__

=== TEST 1: the mix



=== TEST 2: the bound



=== TEST 3: refused queries



=== TEST 4: token
--- user_files
>>> tokens
token-one
--- api
ai_gateway_api_token_file $TEST_NGINX_HTML_DIR/tokens;



=== TEST 5: reload keeps



=== TEST 6: dashboard files



=== TEST 7: a zone too small for its buckets
--- http_config
ai_gateway_analytics_zone tiny:64k bucket=1s keep=1d;
--- config
--- must_die
--- error_log
zone "tiny" is too small



=== TEST 8: a bucket longer than keep
--- http_config
ai_gateway_analytics_zone odd:1m bucket=1h keep=1m;
--- config
--- must_die
--- error_log
keep= must be at least one bucket



=== TEST 9: analytics into a zone never declared
--- config
    location /x/ {
        ai_gateway x;
        ai_gateway_analytics nozone;
    }
--- must_die
--- error_log
zero size shared memory zone "nozone"



=== TEST 10: one gateway, two zones
--- config
    location /a/ {
        ai_gateway g2;
        ai_gateway_analytics an;
    }
    location /b/ {
        ai_gateway g2;
        ai_gateway_analytics small;
    }
--- must_die
--- error_log
a gateway has one analytics zone



=== TEST 11: the dashboard's API base must be a path of this server
--- config
    location /dashboard/ {
        ai_gateway_dashboard api=//evil.example/client/v4;
    }
--- must_die
--- error_log
the API's base is a path on this server



=== TEST 12: the dashboard's ids: letters, digits, "-_."
--- config
    location /dashboard/ {
        ai_gateway_dashboard gateway=<script>;
    }
--- must_die
--- error_log
a gateway id of letters, digits
