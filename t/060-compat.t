# Copyright (C) ngx_ai_gateway contributors

# The Unified API (/compat/chat/completions): routing by the model's
# provider prefix, OpenAI-compatible providers, the provider key moved to
# the provider's header, and every malformed request.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
no_long_string();

sub chat {
    my ($model, $extra) = @_;
    $extra //= '';
    return "POST /v1/acct/gw/compat/chat/completions\n"
         . qq({"model":"$model","messages":[{"role":"user","content":"hi"}]$extra});
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
        '$TEST_NGINX_PROVIDER_UPSTREAMS' . "\n"
        . ($block->http_config // ''));

    $block->set_value("config", <<'END') unless defined $block->config;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_max_body_size 64k;
        ai_gateway_provider custom-acme http://127.0.0.1:$TEST_NGINX_MOCK_PORT/api auth_header=x-acme-key;
        $TEST_NGINX_TLS_CONFIG
    }
END

    if (!defined $block->no_error_log && !defined $block->error_log) {
        $block->set_value("no_error_log", "[error]\n[alert]\n[crit]\n");
    }
});

run_tests();

__DATA__

=== TEST 1: openai: the model loses its prefix, the rest of the body is kept
--- request eval
"POST /v1/acct/gw/compat/chat/completions\n"
. '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"seed":123456789012345678901234567890,"temperature":0.25,"stream":false,"n":1,"metadata":{"model":"kept"}}'
--- more_headers
Authorization: Bearer sk-openai
Content-Type: application/json
--- response_body_like: "path":"/v1/chat/completions".*"authorization":"Bearer sk-openai".*"body":"\{\\"model\\":\\"gpt-4o-mini\\",\\"messages\\":\[\{\\"role\\":\\"user\\",\\"content\\":\\"h\xc3\xa9 \\\\\\"x\\\\\\"\\"\}\],\\"seed\\":123456789012345678901234567890,\\"temperature\\":0.25,\\"stream\\":false,\\"n\\":1,\\"metadata\\":\{\\"model\\":\\"kept\\"\}\}".*"host":"api.openai.com"



=== TEST 2: the OpenAI SDK's /compat/v1/chat/completions form too
--- request eval
"POST /v1/acct/gw/compat/v1/chat/completions\n"
. '{"model":"openai/gpt-4o","messages":[]}'
--- response_body_like: "path":"/v1/chat/completions".*"body":"\{\\"model\\":\\"gpt-4o\\"



=== TEST 3: OpenAI-compatible providers and their chat endpoints
--- request eval
[ main::chat("groq/llama-3.3-70b-versatile"),
  main::chat("mistral/mistral-large-latest"),
  main::chat("deepseek/deepseek-chat"),
  main::chat("grok/grok-4"),
  main::chat("xai/grok-4"),
  main::chat("cerebras/llama3.1-8b"),
  main::chat("perplexity/sonar"),
  main::chat("perplexity-ai/sonar"),
  main::chat("workers-ai/\@cf/meta/llama-3.3-70b-instruct-fp8-fast"),
  main::chat("baseten/openai/gpt-oss-120b"),
  main::chat("openrouter/anthropic/claude-3.5-sonnet"),
  main::chat("cohere/command-a-03-2025") ]
--- more_headers
Authorization: Bearer key-1
--- response_body_like eval
[ qr{"path":"/openai/v1/chat/completions".*"authorization":"Bearer key-1".*\\"model\\":\\"llama-3.3-70b-versatile\\".*"host":"api.groq.com"},
  qr{"path":"/v1/chat/completions".*\\"model\\":\\"mistral-large-latest\\".*"host":"api.mistral.ai"},
  qr{"path":"/chat/completions".*\\"model\\":\\"deepseek-chat\\".*"host":"api.deepseek.com"},
  qr{"path":"/v1/chat/completions".*\\"model\\":\\"grok-4\\".*"host":"api.x.ai"},
  qr{"path":"/v1/chat/completions".*\\"model\\":\\"grok-4\\".*"host":"api.x.ai"},
  qr{"path":"/v1/chat/completions".*\\"model\\":\\"llama3.1-8b\\".*"host":"api.cerebras.ai"},
  qr{"path":"/chat/completions".*\\"model\\":\\"sonar\\".*"host":"api.perplexity.ai"},
  qr{"path":"/chat/completions".*\\"model\\":\\"sonar\\".*"host":"api.perplexity.ai"},
  qr{"path":"/client/v4/accounts/acct/ai/v1/chat/completions".*\\"model\\":\\"\@cf/meta/llama-3.3-70b-instruct-fp8-fast\\".*"host":"api.cloudflare.com"},
  qr{"path":"/v1/chat/completions".*\\"model\\":\\"openai/gpt-oss-120b\\".*"host":"inference.baseten.co"},
  qr{"path":"/api/v1/chat/completions".*\\"model\\":\\"anthropic/claude-3.5-sonnet\\".*"host":"openrouter.ai"},
  qr{"path":"/compatibility/v1/chat/completions".*"authorization":"Bearer key-1".*\\"model\\":\\"command-a-03-2025\\".*"host":"api.cohere.ai"} ]



=== TEST 4: the key moves to the provider's header (parallel, a custom provider)
--- request eval
[ main::chat("parallel/speed"), main::chat("custom-acme/acme-large") ]
--- more_headers
Authorization: Bearer pk-9
--- response_body_like eval
[ qr{"path":"/chat/completions".*"headers":\{(?!.*authorization).*"x-api-key":"pk-9".*\\"model\\":\\"speed\\".*"host":"api.parallel.ai"},
  qr{"path":"/api/chat/completions".*"headers":\{(?!.*authorization).*"x-acme-key":"pk-9".*\\"model\\":\\"acme-large\\"} ]



=== TEST 5: a streamed answer from an OpenAI-compatible provider passes as is
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
main::chat("openai/gpt-4o", ',"stream":true,"stream_options":{"include_usage":true}')
--- more_headers
x-mock: fixture=openai-chat/stream-tool-call-usage.sse;interval=2
--- response_headers
Content-Type: text/event-stream; charset=utf-8
--- response_body eval
do { open my $f, '<:raw', 't/fixtures/openai-chat/stream-tool-call-usage.sse'; local $/; <$f> }



=== TEST 6: a model without a provider prefix
--- request eval
[ main::chat("gpt-4o"), main::chat("openai/"), main::chat("/gpt-4o") ]
--- error_code eval
[400, 400, 400]
--- response_body_like eval
[ (qr/"error":\[\{"code":2207,"message":"\\"model\\" must be \\"\{provider\}\/\{model\}\\", for example \\"openai\/gpt-4o-mini\\""\}\]/) x 3 ]



=== TEST 7: an unknown provider prefix, an undeclared custom provider
--- request eval
[ main::chat("nope/x"), main::chat("custom-nope/x") ]
--- error_code eval
[400, 400]
--- response_body_like eval
[ qr/"error":\[\{"code":2008,"message":"Invalid provider"\}\]/,
  qr/"error":\[\{"code":2008,"message":"Invalid provider"\}\]/ ]



=== TEST 8: providers that are not on the Unified API, dynamic routes
--- request eval
[ main::chat("azure-openai/gpt-4o"), main::chat("dynamic/customer-support") ]
--- error_code eval
[400, 400]
--- response_body_like eval
[ qr/"code":2207,"message":"Provider \\"azure-openai\\" is not available on the Unified API"/,
  qr/"code":2207,"message":"Dynamic routes are not available in this version"/ ]



=== TEST 9: malformed bodies
--- request eval
[ "POST /v1/acct/gw/compat/chat/completions\n{\"model\":",
  "POST /v1/acct/gw/compat/chat/completions\n[1,2]",
  "POST /v1/acct/gw/compat/chat/completions\n",
  "POST /v1/acct/gw/compat/chat/completions\n{\"model\":42}",
  "POST /v1/acct/gw/compat/chat/completions\n{\"messages\":[]}",
  "POST /v1/acct/gw/compat/chat/completions\n{\"a\":" . ("[" x 60000) ]
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body_like eval
[ qr/"code":2208,"message":"The request body must be a JSON object"/,
  qr/"code":2208,"message":"The request body must be a JSON object"/,
  qr/"code":2208,"message":"The request body must be a JSON object"/,
  qr/"code":2207,"message":"\\"model\\" must be a string \\"\{provider\}\/\{model\}\\""/,
  qr/"code":2207/,
  qr/"code":2208,"message":"The request body must be a JSON object"/ ]



=== TEST 10: a chunked body is collected too
--- raw_request eval
"POST /v1/acct/gw/compat/chat/completions HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
f\r
{\"model\":\"opena\r
12\r
i/gpt-4o\",\"n\":1}  \r
0\r
\r
"
--- response_body_like: "path":"/v1/chat/completions".*"body":"\{\\"model\\":\\"gpt-4o\\",\\"n\\":1\}"



=== TEST 11: a body over the limit, other methods and endpoints
--- request eval
[ "POST /v1/acct/gw/compat/chat/completions\n" . ('{"model":"openai/x","p":"' . ('a' x 70000) . '"}'),
  "GET /v1/acct/gw/compat/chat/completions",
  "POST /v1/acct/gw/compat/responses\n{}" ]
--- error_code eval
[413, 400, 501]
--- no_error_log
[alert]
--- response_body_like eval
[ qr/"code":2202/, qr/"code":2208,"message":"The Unified API takes POST requests"/,
  qr/"code":2205,"message":"The Unified API serves \/compat\/chat\/completions, \/compat\/embeddings and \/compat\/v1\/models"/ ]



=== TEST 12: the provider, model and upstream in the variables
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        add_header X-Vars "$ai_gateway_provider|$ai_gateway_model|$ai_gateway_upstream_url" always;
    }
--- request eval
main::chat("openai/gpt-4o-mini")
--- response_headers
X-Vars: openai|gpt-4o-mini|http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/chat/completions



=== TEST 13: embeddings from OpenAI-compatible providers
--- request eval
[ "POST /v1/acct/gw/compat/embeddings\n{\"model\":\"openai/text-embedding-3-small\",\"input\":\"hi\"}",
  "POST /v1/acct/gw/compat/v1/embeddings\n{\"model\":\"mistral/mistral-embed\",\"input\":[\"a\",\"b\"]}",
  "POST /v1/acct/gw/compat/embeddings\n{\"model\":\"workers-ai/\@cf/baai/bge-small-en-v1.5\",\"input\":\"x\"}",
  "POST /v1/acct/gw/compat/embeddings\n{\"model\":\"cohere/embed-v4.0\",\"input\":\"x\"}",
  "POST /v1/acct/gw/compat/embeddings\n{\"model\":\"custom-acme/e5\",\"input\":\"x\"}" ]
--- more_headers
Authorization: Bearer key-e
--- response_body_like eval
[ qr{"path":"/v1/embeddings".*\\"model\\":\\"text-embedding-3-small\\".*"host":"api.openai.com"},
  qr{"path":"/v1/embeddings".*\\"model\\":\\"mistral-embed\\".*"host":"api.mistral.ai"},
  qr{"path":"/client/v4/accounts/acct/ai/v1/embeddings".*\\"model\\":\\"\@cf/baai/bge-small-en-v1.5\\"},
  qr{"path":"/compatibility/v1/embeddings".*"host":"api.cohere.ai"},
  qr{"path":"/api/embeddings".*"x-acme-key":"key-e"} ]



=== TEST 14: a provider without embeddings
--- request eval
[ "POST /v1/acct/gw/compat/embeddings\n{\"model\":\"groq/x\",\"input\":\"hi\"}",
  "POST /v1/acct/gw/compat/embeddings\n{\"model\":\"anthropic/x\",\"input\":\"hi\"}" ]
--- error_code eval
[400, 400]
--- response_body_like eval
[ qr/"code":2207,"message":"Provider \\"groq\\" offers no embeddings on the Unified API"/,
  qr/"code":2207,"message":"Provider \\"anthropic\\" offers no embeddings on the Unified API"/ ]



=== TEST 15: the model list
--- config
    ai_gateway_models openai/gpt-4o-mini anthropic/claude-sonnet-4-5 google/gemini-2.5-flash;
    location /v1/ {
        ai_gateway gw;
    }
--- request eval
[ "GET /v1/acct/gw/compat/v1/models", "GET /v1/acct/gw/compat/models",
  "POST /v1/acct/gw/compat/v1/models\n{}" ]
--- error_code eval
[200, 200, 400]
--- response_body eval
[ '{"object":"list","data":[{"id":"openai/gpt-4o-mini","object":"model","created":0,"owned_by":"openai"},{"id":"anthropic/claude-sonnet-4-5","object":"model","created":0,"owned_by":"anthropic"},{"id":"google/gemini-2.5-flash","object":"model","created":0,"owned_by":"google"}]}',
  '{"object":"list","data":[{"id":"openai/gpt-4o-mini","object":"model","created":0,"owned_by":"openai"},{"id":"anthropic/claude-sonnet-4-5","object":"model","created":0,"owned_by":"anthropic"},{"id":"google/gemini-2.5-flash","object":"model","created":0,"owned_by":"google"}]}',
  '{"success":false,"result":[],"messages":[],"error":[{"code":2208,"message":"The model list takes GET requests"}],"name":"AiGatewayError","httpCode":400,"internalCode":2208,"message":"The model list takes GET requests","description":"The model list takes GET requests"}' ]



=== TEST 16: no models configured: an empty list
--- request
GET /v1/acct/gw/compat/v1/models
--- response_headers
Content-Type: application/json
--- response_body chomp
{"object":"list","data":[]}
