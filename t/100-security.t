# Copyright (C) ngx_ai_gateway contributors

# Security: what a client, a Universal Endpoint step, a token exchange or
# the configuration puts into a provider request passes one validator
# (request smuggling, header injection); encoded dot segments never let the
# location nginx chose and the provider the gateway routes to differ; steps
# and attempts obey the access rules of their request's location; interim
# responses and bad chunked framing from a provider.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use IO::Socket::INET ();
use IO::Select ();
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);
my $J = JSON::PP->new->utf8->canonical;

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

# raw($bytes): a request sent as it is; { status, head, body }
sub raw {
    my ($req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    syswrite($s, $req);
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $deadline = time + 10;
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($s, my $c, 65536);
        last unless $n;
        $buf .= $c;
    }
    close $s;
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    return { status => $status // 0, head => $head // '', body => $body // '' };
}

sub reqs { @{ mock_log()->{requests} } }

sub code_of {
    my $r = shift;
    my $j = eval { json_decode($r->{content} // $r->{body}) } or return undef;
    return $j->{error}[0]{code};
}

sub message_of {
    my $r = shift;
    my $j = eval { json_decode($r->{content} // $r->{body}) } or return '';
    return $j->{error}[0]{message} // '';
}

sub uni {
    gw("/v1/acct/gw", ref $_[0] ? $J->encode($_[0]) : $_[0], @_[1 .. $#_]);
}

sub step {
    my ($provider, $endpoint, %o) = @_;
    my %h = %{ delete $o{headers} // {} };
    return { provider => $provider, endpoint => $endpoint,
             headers => \%h, query => delete $o{query} // { model => 'm' },
             %o };
}

# a service-account key whose token exchange answers per its issuer
sub sa {
    my ($email) = @_;
    open my $fh, '<', "$ENV{TEST_NGINX_CERT_DIR}/sa.key" or die "sa.key: $!";
    my $key = do { local $/; <$fh> };
    return encode_base64($J->encode({
        type => 'service_account', project_id => 'my-proj',
        private_key_id => 'kid-1', private_key => $key,
        client_email => $email, region => 'us-central1' }), '');
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'END' . ($block->http_config // ''))
    $TEST_NGINX_PROVIDER_UPSTREAMS
    upstream pool {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 4;
    }
END
        unless defined $block->must_die;

    $block->set_value("config", <<'END') unless defined $block->config;
    location = /ping { return 200 ok; }

    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://pool;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider mistral http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider groq http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider cohere http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider custom-x http://127.0.0.1:$TEST_NGINX_MOCK_PORT/base;
        ai_gateway_retry_delay 0;
        ai_gateway_read_timeout 3s;
        $TEST_NGINX_TLS_CONFIG
    }

    location /v1/acct/gw/anthropic/ {
        deny all;
        ai_gateway gw;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }

    location /v1/acct/gw/mistral/ {
        auth_basic "gateway";
        auth_basic_user_file /dev/null;
        ai_gateway gw;
        ai_gateway_provider mistral http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }

    location /v1/acct/gw/groq/ {
        auth_request /deny;
        ai_gateway gw;
        ai_gateway_provider groq http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }

    location = /deny { internal; return 403; }

    location /v1/acct/gw/cohere/ {
        internal;
        return 200 "internal only";
    }

    location /v1/acct/gw/openai/moved/ {
        rewrite ^ /elsewhere/ last;
    }

    location /elsewhere/ {
        return 200 "not a gateway location";
    }
END

    unless (defined $block->request || defined $block->raw_request) {
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


# ---------------------------------------------------------------------------
# 1. Universal steps: "authorization", header names and values, endpoints

$scenario{'smuggling through a step authorization'} = sub {
    my $n = shift;
    my $smuggle = "Bearer a\r\n\r\nGET /v1/SMUGGLED HTTP/1.1\r\n"
                . "Host: api.openai.com\r\nX-Pad: ";
    my $r = uni([ step('openai', 'chat/completions',
                       authorization => $smuggle) ]);
    is($r->{status}, 400, "$n - refused");
    is(code_of($r), 2208, "$n - code 2208");
    like(message_of($r), qr/step 0: "authorization" has a line break/,
         "$n - the message names the field");
    unlike($r->{content}, qr/SMUGGLED/, "$n - the value is not echoed");
    is(scalar(reqs()), 0, "$n - nothing reached the provider");

    # the next, unrelated request on the keepalive pool gets its own answer
    for my $i (1 .. 3) {
        my $o = gw("/v1/acct/gw/openai/chat/completions", '{"n":' . $i . '}');
        is($o->{status}, 200, "$n - request $i after it");
        my $echo = eval { json_decode($o->{content}) } // {};
        is($echo->{path}, '/v1/chat/completions', "$n - its own path $i");
        is($echo->{body}, '{"n":' . $i . '}', "$n - its own body $i");
    }
    ok(!grep({ $_->{path} =~ /SMUGGLED/ } reqs()), "$n - no smuggled request");
};

$scenario{'header injection through a step authorization'} = sub {
    my $n = shift;
    for my $p (['openai', 'chat/completions'],
               ['compat', 'chat/completions']) {
        my $r = uni([ step($p->[0], $p->[1],
                           authorization => "Bearer k\r\nX-Injected: 1",
                           query => { model => 'openai/gpt-4o',
                                      messages => [] }) ]);
        is($r->{status}, 400, "$n - $p->[0] refused");
        is(code_of($r), 2208, "$n - $p->[0] code 2208");
    }
    for my $v ("Bearer k\nX-Injected: 1", "Bearer k\rX", "Bearer k\0",
               "Bearer \x01k", "Bearer k\x7f") {
        my $r = uni([ step('openai', 'chat/completions',
                           authorization => $v) ]);
        is($r->{status}, 400, "$n - control byte refused");
    }
    is(scalar(reqs()), 0, "$n - nothing reached the provider");

    # a tab and text beyond ASCII are legal in a header value
    my $r = uni([ step('openai', 'chat/completions',
                       authorization => "Bearer\tk\x{e9}") ]);
    is($r->{status}, 200, "$n - a tab and UTF-8 pass");
    my @r = reqs();
    is($r[0]{headers}{authorization}, "Bearer\tk\x{c3}\x{a9}",
       "$n - sent as they were");
};

$scenario{'step headers with control bytes or bad names'} = sub {
    my $n = shift;
    for my $v ("a\rb", "a\nb", "a\0b", "a\x01b", "a\x7fb") {
        my $r = uni([ step('openai', 'chat/completions',
                           headers => { 'x-a' => $v }) ]);
        is($r->{status}, 400, "$n - value refused");
        like(message_of($r), qr/"headers" has a line break or another/,
             "$n - value message");
    }
    for my $k ("x y", "x:y", "x\x01", "x\r\ny", "(x)", "x\"", "x/y") {
        my $r = uni([ step('openai', 'chat/completions',
                           headers => { $k => 'v' }) ]);
        is($r->{status}, 400, "$n - name refused");
        like(message_of($r), qr/"headers" has a bad name/, "$n - name message");
    }
    is(scalar(reqs()), 0, "$n - nothing reached the provider");
};

$scenario{'step endpoints that leave their provider'} = sub {
    my $n = shift;
    for my $e ('../../anthropic/v1/messages', 'x/../../anthropic/v1/messages',
               'x%2F..%2F..%2Fanthropic/v1/messages', '%2e%2e/x', './x',
               'x/%2E', 'x\\..\\y', 'x%5C..%5Cy') {
        my $r = uni([ step('openai', $e) ]);
        is($r->{status}, 400, "$n - $e refused");
        like(message_of($r), qr/"endpoint" has a "\." or "\.\." segment/,
             "$n - $e message");
    }
    for my $e ("chat/completions HTTP/1.1\r\nX: y", "caf\x{e9}", "a#b",
               "a b", "a\tb") {
        my $r = uni([ step('openai', $e) ]);
        is($r->{status}, 400, "$n - bad character refused");
        like(message_of($r), qr/"endpoint" has a space, a control/,
             "$n - bad character message");
    }
    is(scalar(reqs()), 0, "$n - nothing reached the provider");

    # dots that are not segments are fine
    my $r = uni([ step('openai', 'v1.2/...x/a..b?q=1.0') ]);
    is($r->{status}, 200, "$n - dots in names pass");
    is((reqs())[0]{path}, '/v1.2/...x/a..b', "$n - path as written");
};


# ---------------------------------------------------------------------------
# 2. Client headers and the raw target

$scenario{'client header bytes'} = sub {
    my $n = shift;
    my $r = raw("POST /v1/acct/gw/openai/chat/completions HTTP/1.1\r\n"
              . "Host: x\r\nConnection: close\r\nX-A: a\x01b\r\n"
              . "Content-Length: 2\r\n\r\n{}");
    is($r->{status}, 400, "$n - a control byte in a value is refused");
    is(code_of($r), 2204, "$n - code 2204");
    like(message_of($r), qr/header "X-A"/, "$n - names the header");
    unlike($r->{body}, qr/a\x01b/, "$n - not its value");

    $r = raw("POST /v1/acct/gw/openai/chat/completions HTTP/1.1\r\n"
           . "Host: x\r\nConnection: close\r\nX-B: a\x7fb\r\n"
           . "Content-Length: 2\r\n\r\n{}");
    is($r->{status}, 400, "$n - DEL refused");

    $r = raw("POST /v1/acct/gw/openai/chat/compl\x{c3}\x{a9}tions HTTP/1.1\r\n"
           . "Host: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
    is($r->{status}, 400, "$n - a path byte beyond ASCII is refused");
    is(code_of($r), 2201, "$n - code 2201");

    $r = raw("POST /v1/acct/gw/openai/chat/completions?a=\x{c3}\x{a9} HTTP/1.1\r\n"
           . "Host: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
    is($r->{status}, 400, "$n - a query byte beyond ASCII is refused");

    is(scalar(reqs()), 0, "$n - nothing reached the provider");

    $r = raw("POST /v1/acct/gw/openai/chat/completions HTTP/1.1\r\n"
           . "Host: x\r\nConnection: close\r\nX-C: a\tb \x{c3}\x{a9}\r\n"
           . "Content-Length: 2\r\n\r\n{}");
    is($r->{status}, 200, "$n - tab, space and UTF-8 in a value pass");
};

$scenario{'a token from the exchange with a line break'} = sub {
    my $n = shift;
    my $r = gw("/v1/acct/gw/compat/chat/completions",
               '{"model":"google-vertex-ai/google/gemini-2.5-flash",'
               . '"messages":[{"role":"user","content":"hi"}]}',
               authorization => "Bearer " . sa('inject@p.iam.gserviceaccount.com'));
    is($r->{status}, 502, "$n - 502");
    is(code_of($r), 2005, "$n - code 2005");
    my @r = reqs();
    is(scalar @r, 1, "$n - only the exchange was made");
    is($r[0]{path}, '/token', "$n - to the token endpoint");
};

$scenario{'fal target URLs'} = sub {
    my $n = shift;
    for my $u ('https://fal.run/fal-ai/a b', 'https://fal.run/fal-ai/../x',
               'https://fal.run/x%2F..%2Fy', 'https://fal.run/a/./b',
               'https://fal.run/x?q=a b', 'https://queue.fal.run/x/%2e%2e/y') {
        my $r = gw("/v1/acct/gw/fal/fal-ai/fast-sdxl", '{}',
                   authorization => 'Key k', 'x-fal-target-url' => $u);
        is($r->{status}, 400, "$n - $u refused");
        is(code_of($r), 2204, "$n - code 2204");
    }
    my $r = raw("POST /v1/acct/gw/fal/fal-ai/x HTTP/1.1\r\nHost: x\r\n"
              . "Connection: close\r\nAuthorization: Key k\r\n"
              . "x-fal-target-url: https://fal.run/x\x{c3}\x{a9}\r\n"
              . "Content-Length: 2\r\n\r\n{}");
    is($r->{status}, 400, "$n - a byte beyond ASCII refused");
    is(code_of($r), 2204, "$n - code 2204");

    is(scalar(reqs()), 0, "$n - nothing reached the provider");

    $r = gw("/v1/acct/gw/fal/fal-ai/fast-sdxl", '{}',
               authorization => 'Key k',
               'x-fal-target-url' => 'https://queue.fal.run/fal-ai/x/requests/1?a=b');
    is($r->{status}, 200, "$n - a good one passes");
    is((reqs())[0]{path}, '/fal-ai/x/requests/1', "$n - its path");
};


# ---------------------------------------------------------------------------
# 3. Encoded paths

$scenario{'encoded traversal'} = sub {
    my $n = shift;
    my @bad = (
        '/v1/acct/gw/anthropic/x%2F..%2F..%2Fopenai/v1/messages',
        '/v1/acct/gw/anthropic/x%2f..%2f..%2fopenai/v1/messages',
        '/v1/acct/gw/custom-x/..%2Fsecret',
        '/v1/acct/gw/custom-x/%2e%2e%2Fsecret',
        '/v1/acct/gw/custom-x/a%5C..%5Csecret',
        '/v1/acct/gw/openai/x/%2E/chat',
    );
    for my $p (@bad) {
        my $r = raw("POST $p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  . "Content-Length: 2\r\n\r\n{}");
        is($r->{status}, 400, "$n - $p refused");
        is(code_of($r), 2201, "$n - $p code 2201");
    }
    # the routing segments are taken as they are
    for my $p ('/v1/acct/g%77/openai/chat/completions',
               '/v1/%61cct/gw/openai/chat/completions',
               '/v1/acct/gw/open%61i/chat/completions') {
        my $r = raw("POST $p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  . "Content-Length: 2\r\n\r\n{}");
        is($r->{status}, 400, "$n - $p refused");
        is(code_of($r), 2201, "$n - $p code 2201");
    }
    is(scalar(reqs()), 0, "$n - nothing reached the provider");

    # an escaped slash alone is kept, as Bedrock's model ARNs need
    my $r = raw("POST /v1/acct/gw/custom-x/model/arn%3Aa%2Fb/invoke HTTP/1.1\r\n"
              . "Host: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
    is($r->{status}, 200, "$n - %2F without a dot segment passes");
    is((reqs())[0]{path}, '/base/model/arn%3Aa%2Fb/invoke',
       "$n - forwarded raw");
};


# ---------------------------------------------------------------------------
# 4. Steps and attempts against the access rules of locations

$scenario{'steps against access rules'} = sub {
    my $n = shift;

    # the direct requests
    my $d = gw("/v1/acct/gw/anthropic/v1/messages", '{}');
    is($d->{status}, 403, "$n - deny: the direct request gets 403");
    $d = gw("/v1/acct/gw/mistral/v1/chat/completions", '{}');
    is($d->{status}, 401, "$n - auth_basic: the direct request gets 401");
    $d = gw("/v1/acct/gw/groq/openai/v1/chat/completions", '{}');
    is($d->{status}, 403, "$n - auth_request: the direct request gets 403");
    $d = gw("/v1/acct/gw/cohere/v2/chat", '{}');
    is($d->{status}, 404, "$n - internal: the direct request gets 404");
    is(scalar(reqs()), 0, "$n - no direct request reached the provider");

    # the same calls as steps
    for my $s (['anthropic', 'v1/messages'],
               ['mistral', 'v1/chat/completions'],
               ['groq', 'openai/v1/chat/completions'],
               ['cohere', 'v2/chat'],
               ['openai', 'moved/x']) {
        my $r = uni([ step(@$s) ]);
        is($r->{status}, 403, "$n - $s->[0] step refused");
        is(code_of($r), 2209, "$n - $s->[0] code 2209");
        is($r->{headers}{'cf-aig-step'}, '0', "$n - $s->[0] cf-aig-step");
        unlike($r->{content}, qr/internal only|not a gateway/,
               "$n - $s->[0] nothing of that location ran");
    }
    is(scalar(reqs()), 0, "$n - no step reached the provider");

    # a refused step falls back to the next
    my $r = uni([ step('anthropic', 'v1/messages'),
                  step('openai', 'chat/completions') ]);
    is($r->{status}, 200, "$n - the next step answers");
    is($r->{headers}{'cf-aig-step'}, '1', "$n - cf-aig-step: 1");
    my @r = reqs();
    is(scalar @r, 1, "$n - one provider request");
    is($r[0]{path}, '/v1/chat/completions', "$n - OpenAI's");

    # retried requests run in their own location
    mock_reset();
    $r = gw("/v1/acct/gw/anthropic/v1/messages", '{}',
            'cf-aig-max-attempts' => 3);
    is($r->{status}, 403, "$n - a retried request in a denied location");
    $r = gw("/v1/acct/gw/openai/chat/completions", '{}',
            'cf-aig-max-attempts' => 2, 'x-mock' => 'status=503');
    is($r->{status}, 503, "$n - retried where allowed");
    is(scalar(grep { $_->{path} eq '/v1/chat/completions' } reqs()), 2,
       "$n - both attempts sent");
};


# ---------------------------------------------------------------------------
# 5. Provider framing

$scenario{'interim responses'} = sub {
    my $n = shift;
    for my $i (100, 103) {
        my $r = gw("/v1/acct/gw/openai/chat/completions", '{}',
                   'x-mock' => "interim=$i;fixture=openai-chat/text.json");
        is($r->{status}, 200, "$n - $i then 200");
        like($r->{content}, qr/chat\.completion/, "$n - $i the answer");
    }
    my $r = gw("/v1/acct/gw/compat/chat/completions",
               '{"model":"google-ai-studio/gemini-2.5-flash",'
               . '"messages":[{"role":"user","content":"hi"}]}',
               authorization => 'Bearer gk',
               'x-mock' => 'interim=100;fixture=google-gemini/text.json');
    is($r->{status}, 200, "$n - compat to Google: 200");
    like($r->{content}, qr/^\{"id":"[^"]+","object":"chat\.completion"/,
         "$n - compat to Google: translated");
};

$scenario{'bad chunked framing'} = sub {
    my $n = shift;
    my $r = gw("/v1/acct/gw/custom-x/x", '{}',
               'x-mock' => 'raw=HTTP/1.1 200 OK%0D%0AContent-Type: text/plain'
                         . '%0D%0ATransfer-Encoding: chunked%0D%0A%0D%0A'
                         . 'zz%0D%0Aabc%0D%0A0%0D%0A%0D%0A');
    is($r->{status}, 502, "$n - an invalid first chunk: 502");
    is(code_of($r), 2005, "$n - code 2005");

    $r = raw("POST /v1/acct/gw/custom-x/x HTTP/1.1\r\nHost: x\r\n"
           . "Connection: close\r\nContent-Length: 2\r\n"
           . "x-mock: raw=HTTP/1.1 200 OK%0D%0ATransfer-Encoding: chunked"
           . "%0D%0A%0D%0A3%0D%0Aabc%0D%0Azz%0D%0Ax%0D%0A\r\n\r\n{}");
    is($r->{status}, 502, "$n - invalid framing in the first read: 502");

    # a framing error after the header has left closes the connection
    $r = raw("POST /v1/acct/gw/custom-x/x HTTP/1.1\r\nHost: x\r\n"
           . "Connection: close\r\nContent-Length: 2\r\n"
           . "x-mock: sse=2;interval=200\r\n\r\n{}");
    is($r->{status}, 200, "$n - a good stream");
    like($r->{body}, qr/\r\n0\r\n\r\n\z/, "$n - ends with its last chunk");
};

run_tests();

__DATA__

=== TEST 1: smuggling through a step authorization
--- no_error_log
[alert]
[crit]
upstream sent



=== TEST 2: header injection through a step authorization



=== TEST 3: step headers with control bytes or bad names



=== TEST 4: step endpoints that leave their provider



=== TEST 5: client header bytes



=== TEST 6: a token from the exchange with a line break
--- error_log
Google token exchange failed



=== TEST 7: fal target URLs



=== TEST 8: encoded traversal



=== TEST 9: steps against access rules
--- error_log
is served by another location than its request, refused



=== TEST 10: interim responses



=== TEST 11: bad chunked framing
--- error_log
provider sent an invalid chunked body



=== TEST 12: configuration: an auth_header name that cannot be sent
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-x http://127.0.0.1:1 "auth_header=x y";
    }
--- must_die
--- error_log
invalid "auth_header=" name "x y"



=== TEST 13: configuration: a line break in auth_header
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-x http://127.0.0.1:1 "auth_header=x
y";
    }
--- must_die
--- error_log
invalid "auth_header=" name



=== TEST 14: configuration: a host= that cannot be sent
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-x http://127.0.0.1:1 "host=a b";
    }
--- must_die
--- error_log
invalid "host=" name "a b"



=== TEST 15: configuration: a dot segment in a provider URL
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-x http://127.0.0.1:1/a/../b;
    }
--- must_die
--- error_log
invalid URL "http://127.0.0.1:1/a/../b"
