# Copyright (C) ngx_ai_gateway contributors

# Request logs in the shared memory store and the Logs API over them: the
# record of every kind of request (native, /compat, streamed, cached,
# failed, retried, Universal steps), cf-aig-collect-log and
# cf-aig-collect-log-payload, the payload limit, credentials redacted
# everywhere, a full store under each strategy.  Each scenario runs in the
# response body check, against the block's nginx.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use IO::Socket::INET ();
use JSON::PP ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
our $J = JSON::PP->new->utf8->canonical;

sub gw {
    my ($path, $body, %h) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path";
    my $method = delete $h{method} // (defined $body ? 'POST' : 'GET');
    return $HT->request($method, $url, {
        headers => { 'content-type' => 'application/json', %h },
        defined $body ? (content => $body) : (),
    });
}

sub chat { "/v1/acct/gw/openai/chat/completions" }

# api($method, $path_after_gateway, $query_or_body): the decoded answer

sub api {
    my ($method, $path, $arg, %h) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
            . "/client/v4/accounts/acct/ai-gateway/gateways/gw/logs$path";
    my $content;
    if ($method eq 'PATCH') {
        $content = ref $arg ? $J->encode($arg) : $arg;
    } elsif (defined $arg) {
        $url .= "?$arg";
    }
    my $r = $HT->request($method, $url, {
        headers => { %h, $content ? ('content-type' => 'application/json')
                                  : () },
        defined $content ? (content => $content) : (),
    });
    my $j = eval { $J->decode($r->{content}) };
    return wantarray ? ($j, $r) : $j;
}

sub logs { my $j = api('GET', '', @_); return $j ? $j->{result} : undef }

sub one { my $j = api('GET', "/$_[0]"); return $j ? $j->{result} : undef }

sub clear { api('DELETE', '') }

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", "ai_gateway_log_zone logs:4m;\n"
                                     . "ai_gateway_cache_zone aic:1m;\n"
                                     . ($block->http_config // ''));

    my $extra = $block->gateway // '';

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs logs;
        $extra
    }
    location /client/v4/ {
        ai_gateway_api;
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

$scenario{'native record'} = sub {
    my $n = shift;
    my $b = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}';
    my $r = gw(chat(), $b, authorization => 'Bearer sk-secret-123',
               'cf-aig-metadata' => '{"team":"a"}', 'user-agent' => 'ua/1');
    is($r->{status}, 200, "$n - 200");
    my $id = $r->{headers}{'cf-aig-log-id'};
    my $l = logs();
    is(scalar @$l, 1, "$n - one record");
    is($l->[0]{id}, $id, "$n - the id is cf-aig-log-id");
    is($l->[0]{provider}, 'openai', "$n - provider");
    is($l->[0]{model}, 'gpt-4o-mini', "$n - model");
    is($l->[0]{path}, 'chat/completions', "$n - path");
    is($l->[0]{request_type}, 'provider', "$n - request_type");
    is($l->[0]{model_type}, 'chat', "$n - model_type");
    is($l->[0]{status_code}, 200, "$n - status_code");
    ok($l->[0]{success}, "$n - success");
    ok(!$l->[0]{cached}, "$n - not cached");
    is($l->[0]{step}, 0, "$n - step 0");
    is($l->[0]{event_id}, $r->{headers}{'cf-aig-event-id'}, "$n - event id");
    like($l->[0]{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
         "$n - created_at");
    ok(exists $l->[0]{tokens_in} && exists $l->[0]{tokens_out},
       "$n - tokens_in and tokens_out");
    like($l->[0]{request_content_type}, qr{^application/json},
         "$n - request content type");
    like($l->[0]{response_content_type}, qr{^application/json},
         "$n - response content type");
    my $g = one($id);
    is($g->{id}, $id, "$n - get one");
    like($g->{request_head}, qr{^POST /v1/acct/gw/openai/chat/completions HTTP/1\.1\r\n},
         "$n - request head");
    like($g->{request_head}, qr{authorization: \[REDACTED\]}i,
         "$n - the credential redacted");
    unlike($g->{request_head}, qr/sk-secret/, "$n - not its value");
    like($g->{response_head}, qr{^HTTP/1\.1 200\r\n}, "$n - response head");
    ok($g->{request_head_complete}, "$n - request head complete");
    is($g->{request_size}, length $b, "$n - request size");
    is($g->{response_size}, length $r->{content}, "$n - response size");
    is($g->{user_agent}, 'ua/1', "$n - user agent");
    my (undef, $q) = api('GET', "/$id/request");
    is($q->{content}, $b, "$n - the request payload");
    my (undef, $p) = api('GET', "/$id/response");
    (my $expect = $r->{content}) =~ s/Bearer sk-secret-123/[REDACTED]/g;
    is($p->{content}, $expect,
       "$n - the response payload, the credential the mock echoes redacted");
    like($p->{headers}{'content-type'}, qr{^application/json},
         "$n - its type");
    clear();
};


sub by_id { my %h = map { $_->{id} => $_ } @{ $_[0] }; return \%h }

# every byte the API shows about the gateway's logs, payloads included

sub everything {
    my $all = '';
    my $l = logs('per_page=50') || [];
    for my $r (@$l) {
        my (undef, $g) = api('GET', "/$r->{id}");
        my (undef, $q) = api('GET', "/$r->{id}/request");
        my (undef, $p) = api('GET', "/$r->{id}/response");
        $all .= join "\n", $g->{content}, $q->{content}, $p->{content};
    }
    return $all;
}

sub step {
    my ($provider, $endpoint, %o) = @_;
    my %h = %{ delete $o{headers} // {} };
    return { provider => $provider, endpoint => $endpoint,
             headers => \%h, query => delete $o{query} // { model => 'm' },
             %o };
}

$scenario{'compat record'} = sub {
    my $n = shift;
    my $b = '{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hello"}]}';
    my $r = gw("/v1/acct/gw/compat/chat/completions", $b,
               authorization => 'Bearer sk-ant-secret',
               'x-mock' => 'fixture=anthropic/text.json');
    is($r->{status}, 200, "$n - 200");
    my $id = $r->{headers}{'cf-aig-log-id'};
    my $g = one($id);
    is($g->{provider}, 'anthropic', "$n - the provider routed to");
    is($g->{request_type}, 'compat', "$n - request_type compat");
    is($g->{model_type}, 'chat', "$n - model_type");
    is($g->{path}, 'chat/completions', "$n - path");
    ok($g->{success}, "$n - success");
    my (undef, $q) = api('GET', "/$id/request");
    is($q->{content}, $b, "$n - the request as the client sent it");
    my (undef, $p) = api('GET', "/$id/response");
    is($p->{content}, $r->{content}, "$n - the answer as the client got it");
    like($p->{content}, qr/"object":"chat.completion"/, "$n - translated");
    is($g->{response_size}, length $r->{content}, "$n - its size");
    my $l = logs('filters=' . uri('[{"key":"compatibilityMode","operator":"eq","value":[true]}]'));
    is(scalar @$l, 1, "$n - compatibilityMode");
    unlike(everything(), qr/sk-ant-secret/, "$n - no credential anywhere");
    clear();
};

$scenario{'streamed record'} = sub {
    my $n = shift;
    my $b = '{"model":"gpt-4o","stream":true}';
    my $r = gw(chat(), $b, 'x-mock' => 'sse=4;interval=5');
    is($r->{status}, 200, "$n - 200");
    my $id = $r->{headers}{'cf-aig-log-id'};
    my $g = one($id);
    ok($g->{success}, "$n - success");
    like($g->{response_content_type}, qr{^text/event-stream},
         "$n - response content type");
    ok(defined $g->{ttfb}, "$n - time to first byte");
    is($g->{response_size}, length $r->{content}, "$n - every byte counted");
    my (undef, $p) = api('GET', "/$id/response");
    is($p->{content}, $r->{content}, "$n - the stream kept as it went");
    like($p->{headers}{'content-type'}, qr{^text/event-stream},
         "$n - served with its type");

    # a translated stream: the client's chunks are kept
    $r = gw("/v1/acct/gw/compat/chat/completions",
            '{"model":"anthropic/claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"Hi"}]}',
            'x-mock' => 'fixture=anthropic/stream-text.sse');
    is($r->{status}, 200, "$n - compat stream 200");
    (undef, $p) = api('GET', "/$r->{headers}{'cf-aig-log-id'}/response");
    is($p->{content}, $r->{content}, "$n - the translated stream kept");
    like($p->{content}, qr/chat\.completion\.chunk/, "$n - as chunks");
    clear();
};

$scenario{'stream cut by the provider'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{"stream":true}',
               'x-mock' => 'sse=50;interval=10;close_after=3');
    my $l = logs();
    is(scalar @$l, 1, "$n - a record");
    ok(!$l->[0]{success}, "$n - not a success");
    is($l->[0]{status_code}, 200, "$n - the status the client got");
    clear();
};

$scenario{'client leaves a stream'} = sub {
    my $n = shift;
    my $s = stream_request("POST /v1/acct/gw/openai/chat/completions HTTP/1.1\r\n"
                           . "Host: x\r\nContent-Type: application/json\r\n"
                           . "x-mock: sse=50;interval=50\r\n"
                           . "Content-Length: 2\r\n\r\n{}", abort_after => 1);
    ok(!$s->{complete}, "$n - left early");
    my $l;
    for (1 .. 50) {
        $l = logs();
        last if $l && @$l;
        sleep 0.1;
    }
    is(scalar @$l, 1, "$n - a record all the same");
    clear();
};

$scenario{'cached record'} = sub {
    my $n = shift;
    my $b = '{"model":"gpt-4o","messages":[{"role":"user","content":"cache me"}]}';
    my $r1 = gw(chat(), $b);
    my $r2 = gw(chat(), $b);
    is($r2->{headers}{'cf-aig-cache-status'}, 'HIT', "$n - a hit");
    my $g1 = one($r1->{headers}{'cf-aig-log-id'});
    my $g2 = one($r2->{headers}{'cf-aig-log-id'});
    ok(!$g1->{cached}, "$n - the first is not cached");
    ok($g2->{cached}, "$n - the second is");
    ok($g2->{success}, "$n - and a success");
    my (undef, $p) = api('GET', "/$r2->{headers}{'cf-aig-log-id'}/response");
    is($p->{content}, $r2->{content}, "$n - its answer, from the cache");
    my $l = logs('filters=' . uri('[{"key":"cached","operator":"eq","value":[true]}]'));
    is(scalar @$l, 1, "$n - filtered on cached");
    clear();
};

$scenario{'failed records'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{}', 'x-mock' => 'status=500');
    is($r->{status}, 500, "$n - the provider's 500");
    my $g = one($r->{headers}{'cf-aig-log-id'});
    is($g->{status_code}, 500, "$n - status_code 500");
    ok(!$g->{success}, "$n - not a success");
    my (undef, $p) = api('GET', "/$g->{id}/response");
    is($p->{content}, $r->{content}, "$n - the error body");

    $r = gw("/v1/acct/gw/nosuchprovider/x", '{}');
    is($r->{status}, 400, "$n - the gateway's 400");
    $g = one($r->{headers}{'cf-aig-log-id'});
    is($g->{status_code}, 400, "$n - logged, status_code 400");
    (undef, $p) = api('GET', "/$g->{id}/response");
    like($p->{content}, qr/"code":2008/, "$n - the envelope kept");

    $r = gw(chat(), '{}', 'x-mock' => 'reset=1');
    is($r->{status}, 502, "$n - a provider that resets");
    $g = one($r->{headers}{'cf-aig-log-id'});
    is($g->{status_code}, 502, "$n - logged, status_code 502");
    clear();
};

$scenario{'retried records'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{"model":"gpt-4o"}', 'cf-aig-max-attempts' => 3,
               'cf-aig-retry-delay' => 0,
               'x-mock' => 'script=r1;try1=status%3D500');
    is($r->{status}, 200, "$n - the second attempt answers");
    my $l = logs();
    is(scalar @$l, 2, "$n - a record per attempt");
    my $h = by_id($l);
    my $id = $r->{headers}{'cf-aig-log-id'};
    ok($h->{$id}, "$n - the answer has the request's log id");
    is($h->{$id}{status_code}, 200, "$n - its status");
    my ($other) = grep { $_->{id} ne $id } @$l;
    is($other->{status_code}, 500, "$n - the first attempt's 500");
    ok(!$other->{success}, "$n - not a success");
    is($other->{step}, 0, "$n - step 0 both");
    my (undef, $q) = api('GET', "/$other->{id}/request");
    is($q->{content}, '{"model":"gpt-4o"}', "$n - its request payload");
    clear();
};

$scenario{'universal records'} = sub {
    my $n = shift;
    my $r = gw("/v1/acct/gw", $J->encode([
        step('anthropic', 'v1/messages',
             headers => { 'x-api-key' => 'ak-universal-secret',
                          'x-mock' => 'status=529' },
             query => { model => 'claude', max_tokens => 5, messages => [] }),
        step('openai', 'chat/completions',
             headers => { authorization => 'Bearer sk-universal-secret' },
             query => { model => 'gpt-4o' }) ]));
    is($r->{status}, 200, "$n - the second step answers");
    my $l = logs();
    is(scalar @$l, 2, "$n - a record per step");
    my $h = by_id($l);
    my $id = $r->{headers}{'cf-aig-log-id'};
    is($h->{$id}{step}, 1, "$n - the answer: step 1");
    is($h->{$id}{provider}, 'openai', "$n - its provider");
    is($h->{$id}{model}, 'gpt-4o', "$n - its model");
    is($h->{$id}{request_type}, 'universal', "$n - request_type");
    my ($first) = grep { $_->{id} ne $id } @$l;
    is($first->{step}, 0, "$n - the fallen step: step 0");
    is($first->{status_code}, 529, "$n - its status");
    is($first->{provider}, 'anthropic', "$n - its provider");
    my (undef, $q) = api('GET', "/$id/request");
    is($q->{content}, '{"model":"gpt-4o"}', "$n - the step's query");
    my $all = everything();
    unlike($all, qr/universal-secret/, "$n - the steps' keys nowhere");
    clear();
};

$scenario{'universal body never kept'} = sub {
    my $n = shift;
    my $r = gw("/v1/acct/gw",
               '[{"provider":"openai","endpoint":"x","headers":{"authorization":"Bearer sk-bad-body-secret"},"query":');
    is($r->{status}, 400, "$n - a malformed body");
    my $g = one($r->{headers}{'cf-aig-log-id'});
    is($g->{status_code}, 400, "$n - logged");
    is($g->{request_payload}, 'none', "$n - without its body");
    unlike(everything(), qr/sk-bad-body-secret/, "$n - the key nowhere");
    clear();
};

$scenario{'collect-log off'} = sub {
    my $n = shift;
    gw(chat(), '{}', 'cf-aig-collect-log' => 'false');
    is(scalar @{ logs() }, 0, "$n - no record");
    gw(chat(), '{}', 'cf-aig-collect-log' => 'FALSE');
    is(scalar @{ logs() }, 0, "$n - in any case");
    gw(chat(), '{}', 'cf-aig-collect-log' => 'true');
    is(scalar @{ logs() }, 1, "$n - true: a record");
    gw(chat(), '{}', 'cf-aig-collect-log' => 'maybe');
    is(scalar @{ logs() }, 2, "$n - anything else: the default");
    gw(chat(), '{}', 'cf-aig-max-attempts' => 2, 'cf-aig-collect-log' => 'false');
    is(scalar @{ logs() }, 2, "$n - attempts too");
    clear();
};

$scenario{'collect off by default'} = sub {
    my $n = shift;
    gw(chat(), '{}');
    is(scalar @{ logs() }, 0, "$n - ai_gateway_log_collect off: none");
    my $r = gw(chat(), '{"x":1}', 'cf-aig-collect-log' => 'true');
    my $l = logs();
    is(scalar @$l, 1, "$n - the header asks for one");
    is($l->[0]{id}, $r->{headers}{'cf-aig-log-id'}, "$n - that one");
    clear();
};

$scenario{'payload off'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{"p":1}', 'cf-aig-collect-log-payload' => 'false');
    my $id = $r->{headers}{'cf-aig-log-id'};
    my $g = one($id);
    ok($g, "$n - a record");
    is($g->{request_payload}, 'none', "$n - no request payload");
    is($g->{response_payload}, 'none', "$n - no response payload");
    my ($j, $q) = api('GET', "/$id/request");
    is($q->{status}, 404, "$n - /request: 404");
    is($j->{errors}[0]{code}, 7003, "$n - code 7003");
    is($g->{request_size}, 7, "$n - its size all the same");
    clear();
};

$scenario{'payload off by default'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{"p":2}');
    is(one($r->{headers}{'cf-aig-log-id'})->{request_payload}, 'none',
       "$n - ai_gateway_log_payload off: none");
    $r = gw(chat(), '{"p":3}', 'cf-aig-collect-log-payload' => 'true');
    my (undef, $q) = api('GET', "/$r->{headers}{'cf-aig-log-id'}/request");
    is($q->{content}, '{"p":3}', "$n - the header keeps it");
    clear();
};

$scenario{'payload limit'} = sub {
    my $n = shift;
    my $b = '{"pad":"' . ('x' x 300) . '"}';
    my $r = gw(chat(), $b);
    my $id = $r->{headers}{'cf-aig-log-id'};
    my $g = one($id);
    is($g->{request_payload}, 'truncated', "$n - request truncated");
    is($g->{response_payload}, 'truncated', "$n - response truncated");
    is($g->{request_size}, length $b, "$n - the whole size counted");
    is($g->{response_size}, length $r->{content}, "$n - and the answer's");
    my (undef, $q) = api('GET', "/$id/request");
    is($q->{content}, substr($b, 0, 100), "$n - its first 100 bytes");
    like($q->{headers}{'content-type'}, qr{^text/plain},
         "$n - no longer JSON");
    my (undef, $p) = api('GET', "/$id/response");
    is($p->{content}, substr($r->{content}, 0, 100), "$n - the answer's");
    $r = gw(chat(), '{"small":1}');
    is(one($r->{headers}{'cf-aig-log-id'})->{request_payload}, 'complete',
       "$n - a small one whole");
    clear();
};

$scenario{'credentials redacted'} = sub {
    my $n = shift;
    my %sec = (
        'authorization' => 'Bearer sk-cred-one',
        'x-api-key' => 'cred-two',
        'api-key' => 'cred-three',
        'x-goog-api-key' => 'cred-four',
        'cf-aig-authorization' => 'Bearer cred-five',
        'cookie' => 'session=cred-six',
        'proxy-authorization' => 'Basic cred-seven',
        'x-amz-security-token' => 'cred-eight',
    );
    my $r = gw(chat() . '?key=cred-nine&alt=sse&api_key=cred-ten', '{}',
               %sec, 'x-mock' => 'header=set-cookie:sid%3Dcookie-eleven');
    is($r->{status}, 200, "$n - 200");
    my $g = one($r->{headers}{'cf-aig-log-id'});
    like($g->{request_head}, qr{\?key=\[REDACTED\]&alt=sse&api_key=\[REDACTED\] },
         "$n - ?key= redacted, the rest kept");
    for my $h (sort keys %sec) {
        like($g->{request_head}, qr/^\Q$h\E: \[REDACTED\]\r$/mi,
             "$n - $h redacted");
    }
    like($g->{response_head}, qr/^set-cookie: \[REDACTED\]\r$/mi,
         "$n - set-cookie redacted");
    unlike($g->{response_head}, qr/cookie-eleven/, "$n - its value gone");

    # the mock echoes the request: its answer holds every credential
    like($r->{content}, qr/cred-two/, "$n - the provider echoed them");
    unlike(everything(), qr/cred-/,
           "$n - no credential anywhere, payloads included");
    clear();
};

$scenario{'full, stop_inserting'} = sub {
    my $n = shift;
    my @ids = map { gw(chat(), qq({"n":$_}))->{headers}{'cf-aig-log-id'} } 1 .. 5;
    my $l = logs();
    is(scalar @$l, 3, "$n - three records at most");
    is_deeply([ sort map { $_->{id} } @$l ], [ sort @ids[0 .. 2] ],
              "$n - the first three are kept");
    my $r = gw(chat(), '{}');
    is($r->{status}, 200, "$n - requests go on");
};

$scenario{'full, delete_oldest'} = sub {
    my $n = shift;
    my @ids = map { gw(chat(), qq({"n":$_}))->{headers}{'cf-aig-log-id'} } 1 .. 5;
    my $l = logs();
    is(scalar @$l, 3, "$n - three records at most");
    is_deeply([ sort map { $_->{id} } @$l ], [ sort @ids[2 .. 4] ],
              "$n - the last three are kept");
    clear();
};

$scenario{'zone full'} = sub {
    my $n = shift;
    my $big = '{"pad":"' . ('y' x 6000) . '"}';
    my @ids = map { gw(chat(), $big)->{headers}{'cf-aig-log-id'} } 1 .. 40;
    my $l = logs('per_page=50');
    ok(@$l > 0 && @$l < 40, "$n - the zone holds some (" . scalar(@$l) . ")");
    ok((grep { $_->{id} eq $ids[-1] } @$l), "$n - the newest among them");
    ok(!(grep { $_->{id} eq $ids[0] } @$l), "$n - not the oldest");
    clear();
};

$scenario{'long heads'} = sub {
    my $n = shift;
    my %h = map { ("x-long-$_" => 'v' x 7000) } 1 .. 3;
    my $r = gw(chat(), '{}', %h);
    ok($r->{headers}{'cf-aig-log-id'}, "$n - answered (the mock refuses it)");
    my $g = one($r->{headers}{'cf-aig-log-id'});
    ok(!$g->{request_head_complete}, "$n - a head over 16 KiB: incomplete");
    cmp_ok(length $g->{request_head}, '<=', 16384, "$n - kept up to 16 KiB");
    like($g->{request_head}, qr{^POST /v1/acct/gw/openai/chat/completions},
         "$n - from its start");
    ok($g->{response_head_complete}, "$n - the response's complete");
    clear();
};

$scenario{'bytes that are not UTF-8'} = sub {
    my $n = shift;
    my $body = '{"model":"m\u00e9"}';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    syswrite($s, "POST " . chat() . " HTTP/1.1\r\nHost: x\r\n"
                 . "Connection: close\r\nContent-Type: application/json\r\n"
                 . "x-odd: a\xf8\x90\x80\x80b\xed\xa0\x80c\xff\r\n"
                 . "User-Agent: ua\xc0\x80\r\n"
                 . "Content-Length: " . length($body) . "\r\n\r\n$body");
    my $raw = '';
    while (sysread($s, my $buf, 65536)) { $raw .= $buf }
    close $s;
    like($raw, qr{^HTTP/1\.1 200}, "$n - 200");
    my ($id) = $raw =~ /^cf-aig-log-id: (\w+)/mi;
    my ($j, $l) = api('GET', '');
    is($l->{status}, 200, "$n - the list is served");
    my ($g, $o) = api('GET', "/$id");
    is($o->{status}, 200, "$n - the log too");
    like($g->{result}{request_head}, qr/x-odd: a\?{4}b\?{3}c\?\r\n/,
         "$n - each byte that is not UTF-8 shown as ?");
    is($g->{result}{user_agent}, 'ua??', "$n - C0 80 too");
    clear();
};

sub uri {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

run_tests();

__DATA__

=== TEST 1: native record
--- gateway
ai_gateway_log_collect on;



=== TEST 2: compat record
--- gateway
ai_gateway_log_payload on;



=== TEST 3: streamed record
--- gateway
ai_gateway_log_payload on;



=== TEST 4: stream cut by the provider



=== TEST 5: client leaves a stream



=== TEST 6: cached record
--- gateway
ai_gateway_cache aic;
ai_gateway_cache_ttl 60;



=== TEST 7: failed records



=== TEST 8: retried records



=== TEST 9: universal records



=== TEST 10: universal body never kept



=== TEST 11: collect-log off



=== TEST 12: collect off by default
--- gateway
ai_gateway_log_collect off;



=== TEST 13: payload off



=== TEST 14: payload off by default
--- gateway
ai_gateway_log_payload off;



=== TEST 15: payload limit
--- gateway
ai_gateway_log_payload_size 100;



=== TEST 16: credentials redacted



=== TEST 17: full, stop_inserting
--- gateway
ai_gateway_logs_max 3;
--- error_log eval
qr/\[error\] .* 1 log records of gateway "gw" lost: the gateway has its ai_gateway_logs_max records, stop_inserting/



=== TEST 18: full, delete_oldest
--- gateway
ai_gateway_logs_max 3;
ai_gateway_logs_strategy delete_oldest;
--- no_error_log
lost



=== TEST 19: zone full
--- http_config
ai_gateway_log_zone small:64k;
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw account=acct;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_logs small;
    ai_gateway_logs_strategy delete_oldest;
}
location /client/v4/ {
    ai_gateway_api;
}



=== TEST 20: long heads



=== TEST 21: bytes that are not UTF-8
