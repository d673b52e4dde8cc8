# Copyright (C) ngx_ai_gateway contributors

# Access control together: a rate limit keyed by the gateway token's name
# ($ai_gateway_client, issue #12) counts each client apart, whatever route
# it takes (provider-native, the Unified API, the Universal Endpoint); a
# client without a token is refused by authentication before any limit
# counts it; and $ai_gateway_limit names the limit that refused.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use Digest::SHA qw(sha256_hex);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);

our $ALICE = 'cfat_alice_Lm20kq0aa7';
our $BOB = 'cfat_bob_Rr17zz19b2';
our $TOKENS = "$ALICE alice\nsha256:" . sha256_hex($BOB) . " bob\n";

my $V = '/v1/acct/gw';
my $BODY = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}';

sub req {
    my ($path, $token, $body) = @_;
    my %h = ('content-type' => 'application/json');
    $h{'cf-aig-authorization'} = "Bearer $token" if defined $token;
    return $HT->request('POST',
                        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
                        { headers => \%h, content => $body // $BODY });
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'END');
    ai_gateway_limit_zone lim:1m;
END

    $block->set_value("config", <<'END');
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_auth_token_file $TEST_NGINX_HTML_DIR/tokens;
        ai_gateway_limit zone=lim name=per_client requests=3 interval=1h
                         technique=fixed key=$ai_gateway_client;
        add_header x-limit $ai_gateway_limit always;
        add_header x-client $ai_gateway_client always;
    }
END

    $block->set_value("user_files", ">>> tokens\n$main::TOKENS");
    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");
    $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
});

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;

    # no token: 401 before any limit, nothing counted

    for (1 .. 5) {
        is(req("$V/openai/chat/completions")->{status}, 401,
           'no token: 401');
    }

    # alice: three requests over three routes, then refused

    my $r = req("$V/openai/chat/completions", $ALICE);
    is($r->{status}, 200, 'alice 1: native');
    is($r->{headers}{'x-client'}, 'alice', 'alice 1: the client identity');

    $r = req("$V/compat/chat/completions", $ALICE,
             '{"model":"openai/gpt-4o","messages":[{"role":"user",'
             . '"content":"hi"}]}');
    is($r->{status}, 200, 'alice 2: the Unified API');

    $r = req($V, $ALICE,
             '[{"provider":"openai","endpoint":"chat/completions",'
             . '"headers":{"x-mock":"status=500"},"query":{"model":"x"}},'
             . '{"provider":"openai","endpoint":"chat/completions",'
             . '"query":{"model":"gpt-4o"}}]');
    is($r->{status}, 200, 'alice 3: the Universal Endpoint, two steps');
    is($r->{headers}{'cf-aig-step'}, '1', 'alice 3: step 1 answered');

    for my $route ("$V/openai/chat/completions", "$V/compat/chat/completions",
                   $V)
    {
        my $body = $route eq $V
                   ? '[{"provider":"openai","endpoint":"chat/completions",'
                     . '"query":{"model":"gpt-4o"}}]'
                   : $route =~ /compat/
                   ? '{"model":"openai/gpt-4o","messages":[]}' : $BODY;
        $r = req($route, $ALICE, $body);
        is($r->{status}, 429, "alice over her limit: 429 on $route");
        like($r->{content}, qr/"code":2003/, "alice: code 2003 on $route");
        is($r->{headers}{'x-limit'}, 'per_client',
           "alice: \$ai_gateway_limit on $route");
    }

    # bob is counted apart

    for my $i (1 .. 3) {
        is(req("$V/openai/chat/completions", $BOB)->{status}, 200,
           "bob $i: his own count");
    }
    is(req("$V/openai/chat/completions", $BOB)->{status}, 429,
       'bob over his limit');
});

run_tests();

__DATA__

=== TEST 1: a limit per gateway token name, on every route
