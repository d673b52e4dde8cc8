# Copyright (C) ngx_ai_gateway contributors

# Cloudflare's ai-gateway-provider pointed at the gateway the documented way
# (examples/ai-gateway-provider.mjs, docs/ai-gateway-provider.md): a
# "binding" that posts the steps to the Universal Endpoint, with the Vercel
# AI SDK's generateText and streamText, falling back from a failing
# Anthropic model to a working OpenAI one.

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

    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/v1/acct/gw";
    my $json = `node t/sdk/binding.mjs $url`;
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

    my @p = @{ $r->{steps} };
    is(scalar @p, 2, "$name - one Universal Endpoint request per call");
    is($p[0]{status}, 200, "$name - answered");
    is($p[0]{step}, '1', "$name - cf-aig-step: 1, the fallback");
    is_deeply($p[0]{providers}, ['anthropic', 'openai'],
              "$name - the steps in order");

    my @m = @{ mock_log()->{requests} };
    is(scalar @m, 4, "$name - two provider requests per call");
    is($m[0]{path}, '/v1/messages', "$name - Anthropic first");
    is($m[0]{headers}{'x-api-key'}, 'ant-key', "$name - with its key");
    is($m[1]{path}, '/v1/chat/completions', "$name - then OpenAI");
    is($m[1]{headers}{authorization}, 'Bearer sk-openai',
       "$name - with its key");
});

run_tests();

__DATA__

=== TEST 1: ai-gateway-provider through a binding falls back from Anthropic to OpenAI
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
