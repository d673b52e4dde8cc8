# Copyright (C) ngx_ai_gateway contributors

# Real clients: the OpenAI SDK on the Unified API (Anthropic, Gemini and
# OpenAI models, streamed tool calls, errors, Gemini embeddings) and the
# Anthropic SDK on the provider-native route, against the mock providers.
# The SDKs come from npm (t/sdk/package.json, installed by "make test").

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use JSON::PP ();

repeat_each(1);
no_shuffle();

my $have = -d 't/sdk/node_modules/openai'
           && -d 't/sdk/node_modules/@anthropic-ai/sdk';

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    my $name = $block->name;

    return if $dry_run;

    if (!$have) {
        fail("$name - the SDKs are installed (cd t/sdk && npm ci)");
        return;
    }

    my $gw = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/v1/acct/gw";
    my $json = `node t/sdk/clients.mjs $gw`;
    my $r = eval { JSON::PP->new->utf8->decode($json) };

    ok($r, "$name - the clients ran") or diag($json), return;

    my $t = $r->{anthropic_text};
    is($t->{object}, 'chat.completion', "$name - anthropic: the object");
    like($t->{content}, qr/^Hello! I'm doing well/, "$name - anthropic: text");
    is($t->{finish}, 'stop', "$name - anthropic: finish_reason");
    is($t->{usage}{total_tokens}, 41, "$name - anthropic: usage");

    my $s = $r->{anthropic_stream_tools};
    is($s->{role}, 'assistant', "$name - stream: the role chunk");
    like($s->{text}, qr/weather in Paris/, "$name - stream: the text");
    is($s->{finish}, 'tool_calls', "$name - stream: finish_reason");
    is(scalar @{ $s->{calls} || [] }, 1, "$name - stream: one tool call");
    is($s->{calls}[0]{name}, 'get_weather', "$name - stream: its name");
    like($s->{calls}[0]{id}, qr/^toolu_/, "$name - stream: its id");
    is($s->{calls}[0]{args}{location}, 'Paris',
       "$name - stream: the arguments, put together");
    ok($s->{usage} && $s->{usage}{prompt_tokens} > 0
       && $s->{usage}{completion_tokens} > 0,
       "$name - stream: the usage chunk");

    my $g = $r->{gemini_stream};
    is($g->{text}, "The capital of Wyoming is **Cheyenne**.\n",
       "$name - gemini: streamed text");
    is($g->{finish}, 'stop', "$name - gemini: finish_reason");

    my $o = $r->{openai_stream};
    ok($o->{chunks} > 3, "$name - openai: chunks relayed");
    is($o->{name}, 'get_weather', "$name - openai: the tool call");

    my $e = $r->{anthropic_error};
    ok($e->{error}, "$name - provider error: thrown");
    is($e->{status}, 400, "$name - provider error: status");
    like($e->{message}, qr/tool_use_id/, "$name - provider error: message");

    $e = $r->{gateway_error};
    is($e->{status}, 400, "$name - gateway error: status");

    my $v = $r->{gemini_embeddings};
    is_deeply($v->{vectors}, [ [0.5, -1, 0.25], [0.125, 2, -0.75] ],
              "$name - gemini embeddings, base64 decoded by the SDK");

    my $k = $r->{anthropic_thinking_round_trip};
    is($k->{finish}, 'tool_calls', "$name - thinking: tool call answer");
    is(scalar @{ $k->{blocks} || [] }, 2, "$name - thinking: two blocks");
    like($k->{reasoning}, qr/call get_weather/, "$name - thinking: text");
    like($k->{second}, qr/^Hello! I'm doing well/,
         "$name - thinking: the second turn answered");

    my ($second) = grep { ($_->{headers}{'x-test'} // '') eq 'round-trip' }
                   @{ mock_log()->{requests} };
    like($second && $second->{body},
         qr/"role":"assistant","content":\[\{"type":"thinking","thinking":"The user wants[^"]*","signature":"EqQBCkgIARABGAIiQL2ZmWdZs0mQ8u2wqvB1"\},\{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix\/LafPsn4aDFIT2Xlx"\},\{"type":"text","text":"Let me check."\},\{"type":"tool_use","id":"toolu_01Think"/,
         "$name - thinking: the blocks went back to Anthropic, first");

    my $x = $r->{vertex};
    like($x->{content}, qr/^There are \*\*3\*\* r's/,
         "$name - vertex: a service-account key as the API key");
    is($x->{stream}, "The capital of Wyoming is **Cheyenne**.\n",
       "$name - vertex: streamed");

    my $n = $r->{anthropic_native};
    like($n->{text}, qr/^Hello! I'm doing well/,
         "$name - anthropic SDK, native route");
    is($n->{stop}, 'end_turn', "$name - anthropic SDK: stop_reason");
});

run_tests();

__DATA__

=== TEST 1: the OpenAI and Anthropic SDKs through the gateway
--- http_config
$TEST_NGINX_PROVIDER_UPSTREAMS
--- config
    location /v1/ {
        ai_gateway gw;
        $TEST_NGINX_TLS_CONFIG
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider google-ai-studio http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
GET /v1/acct/gw/openai/models
--- response_body_like: "path":"/v1/models"
--- timeout: 30
--- no_error_log
[alert]
[crit]
