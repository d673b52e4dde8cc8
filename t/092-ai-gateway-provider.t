# Copyright (C) ngx_ai_gateway contributors

# Cloudflare's ai-gateway-provider (npm), driven by the Vercel AI SDK's
# generateText and streamText, with a model list that falls back from a
# failing Anthropic model to a working OpenAI one: the package posts the
# Universal Endpoint's steps and picks the parser by cf-aig-step.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use JSON::PP ();

repeat_each(1);
no_shuffle();

my $have = -d 't/sdk/node_modules/ai-gateway-provider'
           && -d 't/sdk/node_modules/ai';

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    my $name = $block->name;

    return if $dry_run;

    if (!$have) {
        fail("$name - the SDKs are installed (cd t/sdk && npm ci)");
        return;
    }

    mock_reset();

    my $gw = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}";
    my $json = `node t/sdk/vercel.mjs $gw`;
    my $r = eval { JSON::PP->new->utf8->decode($json) };

    ok($r, "$name - the client ran") or diag($json), return;

    my $g = $r->{generate};
    like($g->{text}, qr/^\*\*Holiday Name:\*\* Galaxy Day/,
         "$name - generateText: the OpenAI model's answer")
        or diag(explain $g);
    is($g->{finish}, 'stop', "$name - generateText: finish");
    ok($g->{tokens} > 0, "$name - generateText: usage");

    my $s = $r->{stream};
    ok(length($s->{text} // '') > 0, "$name - streamText: text streamed")
        or diag(explain $s);
    is($s->{finish}, 'stop', "$name - streamText: finish");

    my @p = @{ $r->{posts} };
    is(scalar @p, 2, "$name - one Universal Endpoint request per call");
    is($p[0]{path}, '/v1/acct/gw', "$name - the Universal Endpoint");
    is($p[0]{step}, '1', "$name - cf-aig-step: 1");
    is($p[0]{body}[0]{provider}, 'anthropic', "$name - step 0: anthropic");
    is($p[0]{body}[1]{provider}, 'openai', "$name - step 1: openai");

    my @m = @{ mock_log()->{requests} };
    is(scalar @m, 4, "$name - two provider requests per call");
    is($m[0]{path}, '/v1/messages', "$name - Anthropic first");
    is($m[0]{headers}{'x-api-key'}, 'ant-key', "$name - with its key");
    is($m[1]{path}, '/v1/chat/completions', "$name - then OpenAI");
    is($m[1]{headers}{authorization}, 'Bearer sk-openai',
       "$name - with its key");
    ok(!grep({ exists $_->{headers}{'cf-aig-authorization'} } @m),
       "$name - the gateway token is not forwarded");
});

run_tests();

__DATA__

=== TEST 1: ai-gateway-provider falls back from Anthropic to OpenAI
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
GET /v1/acct/gw/openai/models
--- response_body_like: "path":"/v1/models"
--- timeout: 30
--- no_error_log
[alert]
[crit]
