# Copyright (C) ngx_ai_gateway contributors

# The Universal Endpoint: POST /v1/{account}/{gateway} with steps, each run
# as the provider-native (or compat) request it describes, falling back in
# order; cf-aig-step, header precedence, per-step retries, timeouts, cache
# keys and streams, and every malformed input.  Scenarios as in 090.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use Time::HiRes qw(time);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);

# gw($path, $body, header => value...): one request, an HTTP::Tiny response
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
sub reqs { @{ mock_log()->{requests} } }

# script(try1 => 'status=500', ...): the x-mock header of a scripted run
my $runs = 0;
sub script {
    my %t = @_;
    $runs++;
    return join ';', "script=s$runs",
        map { my $v = $t{$_}; $v =~ s/;/%3B/g; "$_=$v" } sort keys %t;
}

sub code_of {
    my $r = shift;
    my $j = eval { json_decode($r->{content}) } or return undef;
    return $j->{error}[0]{code};
}

# the waits between attempts, as the mock saw them (ms)
sub gaps {
    my @r = reqs();
    return map { int($r[$_]{t_start} - $r[$_ - 1]{t_end} + 0.5) }
           1 .. $#r;
}


use JSON::PP ();
my $J = JSON::PP->new->canonical;

sub uni { gw("/v1/acct/gw", ref $_[0] ? $J->encode($_[0]) : $_[0], @_[1 .. $#_]) }

sub step {
    my ($provider, $endpoint, %o) = @_;
    my %h = %{ delete $o{headers} // {} };
    return { provider => $provider, endpoint => $endpoint,
             headers => \%h, query => delete $o{query} // { model => 'm' },
             %o };
}

add_block_preprocessor(sub {
    my $block = shift;

    my $extra = $block->gateway // '';

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_retry_delay 0;
        $extra
        add_header X-Attempts "\$ai_gateway_step|\$ai_gateway_attempt_statuses" always;
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

$scenario{'fallback across formats'} = sub {
    my $n = shift;
    my $r = uni([ step('anthropic', 'v1/messages',
                       headers => { 'x-api-key' => 'ak', 'x-mock' => 'status=529' },
                       query => { model => 'claude', max_tokens => 5,
                                  messages => [] }),
                  step('openai', 'chat/completions',
                       headers => { authorization => 'Bearer sk' },
                       query => { model => 'gpt-4o' }) ],
                'x-secret' => 'outer');
    is($r->{status}, 200, "$n - the second step answers");
    is($r->{headers}{'cf-aig-step'}, '1', "$n - cf-aig-step: 1");
    is($r->{headers}{'x-attempts'}, '1|529, 200', "$n - variables");
    my @r = reqs();
    is(scalar @r, 2, "$n - two upstream requests");
    is($r[0]{path}, '/v1/messages', "$n - Anthropic's path");
    is($r[0]{headers}{'x-api-key'}, 'ak', "$n - the step's credential");
    like($r[0]{body}, qr/"max_tokens":5/, "$n - the step's query");
    is($r[1]{path}, '/v1/chat/completions', "$n - then OpenAI's");
    is($r[1]{headers}{authorization}, 'Bearer sk', "$n - its credential");
    is($r[1]{body}, '{"model":"gpt-4o"}', "$n - its query");
    is($r[1]{headers}{'content-type'}, 'application/json',
       "$n - a JSON content type");
    ok(!exists $r[1]{headers}{'x-secret'}, "$n - outer headers stay");
    like($r->{content}, qr/"path":"\/v1\/chat\/completions"/,
         "$n - the body passes as the provider sent it");
};

$scenario{'first step answers'} = sub {
    my $n = shift;
    my $r = uni([ step('openai', 'v1/chat/completions'),
                  step('anthropic', 'v1/messages') ]);
    is($r->{status}, 200, "$n - 200");
    is($r->{headers}{'cf-aig-step'}, '0', "$n - cf-aig-step: 0");
    is(scalar(reqs()), 1, "$n - the fallback is not called");
    $r = uni(step('openai', '/chat/completions?x=1'));
    is($r->{headers}{'cf-aig-step'}, '0', "$n - a single step object");
    my @r = reqs();
    is($r[1]{path}, '/v1/chat/completions', "$n - leading slash, version");
    is($r[1]{query}, 'x=1', "$n - the endpoint's query");
    $r = gw("/v1/acct/gw/", $J->encode([ step('openai', 'chat/completions') ]));
    is($r->{status}, 200, "$n - with a trailing slash");
};

$scenario{'every step fails'} = sub {
    my $n = shift;
    my $r = uni([ step('openai', 'chat/completions',
                       headers => { 'x-mock' => 'status=500' }),
                  step('anthropic', 'v1/messages',
                       headers => { 'x-mock' => 'status=503;header=x-last:yes' }) ]);
    is($r->{status}, 503, "$n - the last step's status");
    is($r->{headers}{'x-last'}, 'yes', "$n - and response");
    is($r->{headers}{'cf-aig-step'}, '1', "$n - cf-aig-step: 1");
};

$scenario{'a 4xx falls back'} = sub {
    my $n = shift;
    my $r = uni([ step('openai', 'chat/completions',
                       headers => { 'x-mock' => 'status=401' },
                       config => { maxAttempts => 3 }),
                  step('openai', 'chat/completions') ]);
    is($r->{status}, 200, "$n - the next step answers");
    is($r->{headers}{'x-attempts'}, '1|401, 200', "$n - a 401 is not retried");
};

$scenario{'retries, then the next step'} = sub {
    my $n = shift;
    my $r = uni([ step('openai', 'chat/completions',
                       headers => { 'x-mock' => 'status=500' },
                       config => { maxAttempts => 2, retryDelay => 50,
                                   backoff => 'constant' }),
                  step('anthropic', 'v1/messages') ]);
    is($r->{status}, 200, "$n - 200");
    is($r->{headers}{'x-attempts'}, '1|500, 500, 200', "$n - attempts");
    is(scalar(reqs()), 3, "$n - three upstream requests");
};

$scenario{'timeout falls back'} = sub {
    my $n = shift;
    my $t = time;
    my $r = uni([ step('openai', 'chat/completions',
                       headers => { 'x-mock' => 'hang=1' },
                       config => { requestTimeout => 300 }),
                  step('anthropic', 'v1/messages') ]);
    is($r->{status}, 200, "$n - the fallback answers");
    is($r->{headers}{'x-attempts'}, '1|504, 200', "$n - after a 504");
    ok(time - $t >= 0.29, "$n - after the timeout");
};

$scenario{'header precedence'} = sub {
    my $n = shift;
    my $r = uni([ step('openai', 'chat/completions',
                       headers => { 'x-mock' => 'status=500',
                                    'cf-aig-max-attempts' => 1 }),
                  step('openai', 'chat/completions',
                       headers => { 'x-mock' => script(try1 => 'status=500') }) ],
                'cf-aig-max-attempts' => 3);
    is($r->{status}, 200, "$n - 200");
    is($r->{headers}{'x-attempts'}, '1|500, 500, 200',
       "$n - step headers over the request's, the request's over none");
    mock_reset();
    $r = uni([ step('openai', 'chat/completions',
                    headers => { 'x-mock' => 'status=500',
                                 'cf-aig-max-attempts' => 1 },
                    config => { maxAttempts => 3 }),
               step('openai', 'chat/completions') ]);
    is($r->{headers}{'x-attempts'}, '1|500, 200',
       "$n - step headers over the step's config");
    mock_reset();
    $r = uni([ step('openai', 'chat/completions',
                    headers => { 'x-mock' => 'status=500' },
                    config => { maxAttempts => 2 }),
               step('openai', 'chat/completions') ],
             'cf-aig-max-attempts' => 4);
    is($r->{headers}{'x-attempts'}, '1|500, 500, 200',
       "$n - the step's config over the request's headers");
};

$scenario{'cached steps'} = sub {
    my $n = shift;
    my @s = ([ step('openai', 'chat/completions',
                    headers => { 'x-mock' => 'status=500' }),
               step('openai', 'chat/completions', query => { q => 2 }) ]);
    my $r1 = uni(@s);
    my $r2 = uni(@s);
    is($r1->{headers}{'cf-aig-cache-status'}, 'MISS', "$n - MISS");
    is($r2->{headers}{'cf-aig-cache-status'}, 'HIT', "$n - HIT");
    is($r2->{headers}{'cf-aig-step'}, '1', "$n - from the second step");
    my $r3 = gw("/v1/acct/gw/openai/chat/completions", '{"q":2}');
    is($r3->{headers}{'cf-aig-cache-status'}, 'HIT',
       "$n - under the step's own key: the provider request's");
    my $r4 = gw("/v1/acct/gw/openai/chat/completions", '{"model":"m"}');
    is($r4->{headers}{'cf-aig-cache-status'}, 'MISS',
       "$n - the failed step's key holds nothing");
    my $r5 = uni([ step('openai', 'chat/completions', query => { q => 2 },
                        headers => { 'cf-aig-skip-cache' => 'true' }) ]);
    is($r5->{headers}{'cf-aig-cache-status'}, 'MISS',
       "$n - a step's own cache header");
};

$scenario{'streaming fallback'} = sub {
    my $n = shift;
    my $r = uni([ step('openai', 'chat/completions',
                       headers => { 'x-mock' => 'status=500' }),
                  step('openai', 'chat/completions',
                       headers => { 'x-mock' => 'sse=3;interval=50' },
                       query => { stream => JSON::PP::true }) ]);
    is($r->{status}, 200, "$n - 200");
    like($r->{headers}{'content-type'}, qr{^text/event-stream},
         "$n - the stream's content type");
    my @ev = $r->{content} =~ /^data: /mg;
    is(scalar @ev, 4, "$n - every event");
    is($r->{headers}{'cf-aig-step'}, '1', "$n - cf-aig-step: 1");
};

$scenario{'compat step'} = sub {
    my $n = shift;
    my $r = uni([ step('compat', 'chat/completions',
                       headers => { authorization => 'Bearer sk-c' },
                       query => { model => 'openai/gpt-4o-mini',
                                  messages => [ { role => 'user',
                                                  content => 'hi' } ] }) ]);
    is($r->{status}, 200, "$n - 200");
    my @r = reqs();
    like($r[0]{body}, qr/"model":"gpt-4o-mini"/, "$n - the Unified API's");
};

$scenario{'a step without a query'} = sub {
    my $n = shift;
    my $r = uni([ { provider => 'openai', endpoint => 'models' } ]);
    is($r->{status}, 200, "$n - 200");
    my @r = reqs();
    is($r[0]{method}, 'POST', "$n - the step's request is a POST");
    is($r[0]{body_len}, 0, "$n - without a body");
    is($r[0]{headers}{'content-length'}, '0',
       "$n - Content-Length: 0, as a POST without a body has");
    ok(!exists $r[0]{headers}{'content-type'}, "$n - and no content type");
    mock_reset();
    $r = uni([ { provider => 'openai', endpoint => 'models',
                 headers => { 'x-mock' => 'status=500' } },
               { provider => 'openai', endpoint => 'models',
                 headers => { 'x-mock' => script(try1 => 'status=500') },
                 config => { maxAttempts => 2 } } ]);
    is($r->{status}, 200, "$n - after a fallback and a retry: 200");
    @r = reqs();
    is(scalar @r, 3, "$n - three upstream requests");
    is(join(',', map { $_->{headers}{'content-length'} // '-' } @r), '0,0,0',
       "$n - each with Content-Length: 0");
};

$scenario{'malformed'} = sub {
    my $n = shift;
    for my $c (['not json [', qr/JSON array of steps/],
               ['"a string"', qr/JSON array of steps/],
               ['[]', qr/1 to 16 steps/],
               ['[' . join(',', ('{"provider":"openai","endpoint":"x"}') x 17) . ']',
                qr/1 to 16 steps/],
               ['[1]', qr/step 0 is not an object/],
               ['[{"endpoint":"x"}]', qr/step 0: \\"provider\\" is missing/],
               ['[{"provider":"openai","endpoint":"x"},{"provider":"openai"}]',
                qr/step 1: \\"endpoint\\" is missing/],
               ['[{"provider":"a/b","endpoint":"x"}]', qr/step 0: \\"provider\\"/],
               ['[{"provider":"openai","endpoint":"x y"}]', qr/step 0: \\"endpoint\\"/],
               ['[{"provider":"openai","endpoint":"x","headers":[]}]',
                qr/step 0: \\"headers\\" is not an object/],
               ['[{"provider":"openai","endpoint":"x","headers":{"a\\nb":"1"}}]',
                qr/step 0: \\"headers\\" has a bad name/],
               ['[{"provider":"openai","endpoint":"x","headers":{"a":"1\\r\\n2"}}]',
                qr/step 0: \\"headers\\" has a line break/],
               ['[{"provider":"openai","endpoint":"x","config":{"maxAttempts":9}}]',
                qr/step 0: \\"maxAttempts\\" is not a valid value/],
               ['[{"provider":"openai","endpoint":"x","config":{"backoff":"soon"}}]',
                qr/step 0: \\"backoff\\" is not a valid value/],
               ['[{"provider":"openai","endpoint":"x","config":3}]',
                qr/step 0: \\"config\\" is not an object/],
               ['[{"provider":"openai","endpoint":"x","headers":{"cf-aig-retry-delay":"9000"}}]',
                qr/step 0: \\"headers\\": Invalid cf-aig-retry-delay/])
    {
        my $r = uni($c->[0]);
        is($r->{status}, 400, "$n - $c->[0]: 400");
        like($r->{content}, $c->[1], "$n - $c->[0]: the message");
        like($r->{content}, qr/"code":220[48]/, "$n - $c->[0]: the code");
    }
    my $r = uni('[]', 'cf-aig-max-attempts' => 'x');
    is($r->{status}, 400, "$n - a bad outer header: 400");
    $r = gw("/v1/acct/gw", undef, method => 'GET');
    is($r->{status}, 400, "$n - GET: 400");
    $r = uni([ step('openai', 'x'), step('no-such-provider', 'x') ]);
    is($r->{status}, 400, "$n - an unknown provider: 400");
    like($r->{content}, qr/"code":2008,"message":"Universal Endpoint step 1: \\"provider\\" is not a provider of this gateway: no-such-provider"/,
         "$n - Invalid provider, the step named");
    $r = uni([ step('OpenAI', 'chat/completions') ]);
    is($r->{status}, 200, "$n - provider names in any case");
    $r = uni([ step('custom-x', 'y') ]);
    is($r->{status}, 200, "$n - a custom provider of the gateway");
    $r = uni($J->encode([ step('openai', 'x', query => { big => 'x' x 2000 }) ]));
    is($r->{status}, 413, "$n - a body over the limit: 413");
};

run_tests();

__DATA__

=== TEST 1: fallback across formats

=== TEST 2: first step answers

=== TEST 3: every step fails

=== TEST 4: a 4xx falls back

=== TEST 5: retries, then the next step

=== TEST 6: timeout falls back

=== TEST 7: header precedence

=== TEST 8: cached steps
--- http_config
ai_gateway_cache_zone aic:1m;
--- gateway
ai_gateway_cache aic; ai_gateway_cache_ttl 60;

=== TEST 9: streaming fallback

=== TEST 10: compat step

=== TEST 11: a step without a query

=== TEST 12: malformed
--- gateway
ai_gateway_max_body_size 1k;
ai_gateway_provider custom-x http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
