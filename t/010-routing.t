# Copyright (C) ngx_ai_gateway contributors

# Provider-native routing: every provider of the built-in table, with its
# real upstream host (an upstream{} block of that name points at the mock's
# TLS port), path rules, credential headers and query strings.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
        '$TEST_NGINX_PROVIDER_UPSTREAMS' . "\n"
        . ($block->http_config // ''));

    if (!defined $block->config) {
        $block->set_value("config", <<'END');
    location /v1/ {
        ai_gateway gw;
        $TEST_NGINX_TLS_CONFIG
    }
END
    }

    if (!defined $block->no_error_log && !defined $block->error_log) {
        $block->set_value("no_error_log", "[error]\n[alert]\n[crit]\n");
    }
});

# every provider of the table: its credential header and the query string
# reach the provider as sent

our @P = (
    [ 'anthropic',        '/v1/messages',                     'x-api-key' ],
    [ 'aws-bedrock',      '/bedrock-runtime/us-east-1/model/m/converse',
                                                              'authorization' ],
    [ 'azure-openai',     '/myres/dep/chat/completions',      'api-key' ],
    [ 'baseten',          '/v1/chat/completions',             'authorization' ],
    [ 'cartesia',         '/tts/bytes',                       'x-api-key' ],
    [ 'cerebras',         '/v1/chat/completions',             'authorization' ],
    [ 'cohere',           '/v2/chat',                         'authorization' ],
    [ 'deepgram',         '/v1/listen',                       'authorization' ],
    [ 'deepseek',         '/chat/completions',                'authorization' ],
    [ 'elevenlabs',       '/v1/text-to-speech/v',             'xi-api-key' ],
    [ 'fal',              '/fal-ai/flux',                     'authorization' ],
    [ 'google-ai-studio', '/v1beta/models/g:generateContent', 'x-goog-api-key' ],
    [ 'google-vertex-ai', '/v1/projects/p/locations/us-central1/publishers/google/models/g:generateContent',
                                                              'authorization' ],
    [ 'grok',             '/v1/chat/completions',             'authorization' ],
    [ 'groq',             '/chat/completions',                'authorization' ],
    [ 'huggingface',      '/org/model',                       'authorization' ],
    [ 'ideogram',         '/v1/ideogram-v3/generate',         'api-key' ],
    [ 'mistral',          '/v1/chat/completions',             'authorization' ],
    [ 'openai',           '/v1/chat/completions',             'authorization' ],
    [ 'openrouter',       '/v1/chat/completions',             'authorization' ],
    [ 'parallel',         '/v1/tasks/runs',                   'x-api-key' ],
    [ 'perplexity-ai',    '/chat/completions',                'authorization' ],
    [ 'replicate',        '/v1/predictions',                  'authorization' ],
    [ 'workers-ai',       '/@cf/meta/m',                      'authorization' ],
);

run_tests();

__DATA__

=== TEST 1: openai, no version segment: /v1 added, https to the real host
--- request
POST /v1/acct/gw/openai/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-test
Content-Type: application/json
--- response_body_like: "method":"POST","path":"/v1/chat/completions","query":"".*"authorization":"Bearer sk-test".*"host":"api.openai.com","sni":"api.openai.com","tls":true



=== TEST 2: openai, with the version segment and a query: unchanged
--- request
GET /v1/acct/gw/openai/v1/models?limit=2&after=x%20y
--- response_body_like: "method":"GET","path":"/v1/models","query":"limit=2&after=x%20y"



=== TEST 3: openai responses API
--- request
POST /v1/acct/gw/openai/responses
{"model":"gpt-5.1","input":[]}
--- response_body_like: "path":"/v1/responses"



=== TEST 4: anthropic: x-api-key and anthropic-version reach the provider
--- request
POST /v1/acct/gw/anthropic/v1/messages
{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}
--- more_headers
x-api-key: sk-ant-test
anthropic-version: 2023-06-01
--- response_body_like: "path":"/v1/messages".*"x-api-key":"sk-ant-test","anthropic-version":"2023-06-01".*"host":"api.anthropic.com","sni":"api.anthropic.com"



=== TEST 5: azure-openai: resource host, deployment path, api-version kept
--- request
POST /v1/acct/gw/azure-openai/myres/my-dep.1/chat/completions?api-version=2024-02-01
{"messages":[]}
--- more_headers
api-key: az-key
--- response_body_like: "path":"/openai/deployments/my-dep.1/chat/completions","query":"api-version=2024-02-01".*"api-key":"az-key".*"host":"myres.openai.azure.com","sni":"myres.openai.azure.com"



=== TEST 6: azure-openai: the SDK's "deployments/" and "openai/" segments
--- request eval
[ "POST /v1/acct/gw/azure-openai/myres/deployments/dep/embeddings?api-version=1\n{}",
  "POST /v1/acct/gw/azure-openai/myres/openai/deployments/dep/chat/completions?api-version=1\n{}" ]
--- response_body_like eval
[ qr{"path":"/openai/deployments/dep/embeddings","query":"api-version=1".*"host":"myres.openai.azure.com"},
  qr{"path":"/openai/deployments/dep/chat/completions","query":"api-version=1".*"host":"myres.openai.azure.com"} ]



=== TEST 7: azure-openai: a resource name that cannot be a host label
--- request
POST /v1/acct/gw/azure-openai/My_Res/dep/chat/completions
{}
--- error_code: 400
--- response_body_like: ^\{"success":false,"result":\[\],"messages":\[\],"error":\[\{"code":2201,"message":"Malformed gateway path for provider \\"azure-openai\\", see docs/providers.md"\}\]



=== TEST 8: aws-bedrock: byte-exact forwarding, SigV4 headers and raw path kept
--- request
POST /v1/acct/gw/aws-bedrock/bedrock-runtime/us-east-1/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse
{"messages":[{"role":"user","content":[{"text":"hi"}]}]}
--- more_headers
Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=abc
X-Amz-Date: 20261121T120000Z
x-amz-content-sha256: 8ad1f4dc4ff7c4ec7d1f2b0f3ba4e4e1e2d7aa5c4fb1cf48ab3ac4d4b5aa0d2b
Content-Type: application/json
--- response_body_like: "path":"/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse".*"authorization":"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=abc","x-amz-date":"20261121T120000Z","x-amz-content-sha256":"8ad1.*"body_len":56,"body_sha256":"c3335e07d6e89650bf94cb98664be69f8774dbc3198df221f113db0a59ea14f0".*"host":"bedrock-runtime.us-east-1.amazonaws.com","sni":"bedrock-runtime.us-east-1.amazonaws.com"



=== TEST 9: aws-bedrock: another region
--- request
POST /v1/acct/gw/aws-bedrock/bedrock-runtime/eu-central-1/model/x/invoke
{}
--- response_body_like: "path":"/model/x/invoke".*"host":"bedrock-runtime.eu-central-1.amazonaws.com"



=== TEST 10: aws-bedrock: service or region that would change the host
--- request eval
[ "POST /v1/acct/gw/aws-bedrock/evil.com/us-east-1/model/x/invoke\n{}",
  "POST /v1/acct/gw/aws-bedrock/bedrock-runtime/us_east-1/model/x/invoke\n{}",
  "POST /v1/acct/gw/aws-bedrock/bedrock-runtime\n{}" ]
--- error_code eval
[400, 400, 400]
--- response_body_like eval
[ qr/"code":2201/, qr/"code":2201/, qr/"code":2201/ ]



=== TEST 11: google-vertex-ai: the regional host from the path
--- request
POST /v1/acct/gw/google-vertex-ai/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent
{"contents":[]}
--- more_headers
Authorization: Bearer ya29.token
--- response_body_like: "path":"/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent".*"authorization":"Bearer ya29.token".*"host":"us-central1-aiplatform.googleapis.com","sni":"us-central1-aiplatform.googleapis.com"



=== TEST 12: google-vertex-ai: "global" has no regional host
--- request
POST /v1/acct/gw/google-vertex-ai/v1/projects/p1/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse
{"contents":[]}
--- response_body_like: "path":"/v1/projects/p1/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent","query":"alt=sse".*"host":"aiplatform.googleapis.com"



=== TEST 13: google-ai-studio and its alias "google"
--- request eval
[ "POST /v1/acct/gw/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent\n{}",
  "POST /v1/acct/gw/google/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse\n{}" ]
--- more_headers
x-goog-api-key: g-key
--- response_body_like eval
[ qr{"path":"/v1beta/models/gemini-2.5-flash:generateContent".*"x-goog-api-key":"g-key".*"host":"generativelanguage.googleapis.com"},
  qr{"path":"/v1/models/gemini-2.5-flash:streamGenerateContent","query":"alt=sse".*"host":"generativelanguage.googleapis.com"} ]



=== TEST 14: workers-ai: model path under the account's ai/run
--- request
POST /v1/acct123/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct
{"prompt":"hi"}
--- more_headers
Authorization: Bearer cf-token
--- response_body_like: "path":"/client/v4/accounts/acct123/ai/run/@cf/meta/llama-3.1-8b-instruct".*"authorization":"Bearer cf-token".*"host":"api.cloudflare.com"



=== TEST 15: workers-ai: the OpenAI-compatible /v1/ routes
--- request eval
[ "POST /v1/acct123/gw/workers-ai/v1/chat/completions\n{}",
  "POST /v1/acct123/gw/workers-ai/v1/embeddings\n{}" ]
--- response_body_like eval
[ qr{"path":"/client/v4/accounts/acct123/ai/v1/chat/completions"},
  qr{"path":"/client/v4/accounts/acct123/ai/v1/embeddings"} ]



=== TEST 16: huggingface: the model follows /models
--- request
POST /v1/acct/gw/huggingface/bigcode/starcoder
{"inputs":"def"}
--- response_body_like: "path":"/models/bigcode/starcoder".*"host":"api-inference.huggingface.co"



=== TEST 17: fal: synchronous API by default
--- request
POST /v1/acct/gw/fal/fal-ai/flux/schnell
{"prompt":"cat"}
--- more_headers
Authorization: Key fal-key
--- response_body_like: "path":"/fal-ai/flux/schnell".*"authorization":"Key fal-key".*"host":"fal.run","sni":"fal.run"



=== TEST 18: fal: x-fal-target-url on a Fal host, not forwarded
--- request
POST /v1/acct/gw/fal
{"prompt":"cat"}
--- more_headers
x-fal-target-url: https://queue.fal.run/fal-ai/bytedance/seedream/v4/edit?sync=1#frag
Authorization: Bearer fal-key
--- response_body_like: "path":"/fal-ai/bytedance/seedream/v4/edit","query":"sync=1","headers":\{(?!.*x-fal-target-url).*"host":"queue.fal.run","sni":"queue.fal.run"



=== TEST 19: fal: x-fal-target-url elsewhere is refused (never an open proxy)
--- request eval
[ "POST /v1/acct/gw/fal\n{}", "POST /v1/acct/gw/fal\n{}",
  "POST /v1/acct/gw/fal\n{}", "POST /v1/acct/gw/fal\n{}",
  "POST /v1/acct/gw/fal\n{}", "POST /v1/acct/gw/fal\n{}" ]
--- more_headers eval
[ "x-fal-target-url: https://evil.com/fal-ai/x",
  "x-fal-target-url: http://queue.fal.run/fal-ai/x",
  "x-fal-target-url: https://fal.run\@evil.com/",
  "x-fal-target-url: https://queue.fal.run:8443/x",
  "x-fal-target-url: https://fal.run.evil.com/x",
  "x-fal-target-url: https://127.0.0.1/fal.run" ]
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body_like eval
[ (qr/"error":\[\{"code":2204,"message":"x-fal-target-url must be an https URL on fal.run or fal.ai"\}\]/) x 6 ]



=== TEST 20: cohere: versioned paths kept, "Token" scheme forwarded
--- request eval
[ "POST /v1/acct/gw/cohere/v2/chat\n{}",
  "POST /v1/acct/gw/cohere/v1/chat\n{}",
  "POST /v1/acct/gw/cohere/chat\n{}",
  "POST /v1/acct/gw/cohere/compatibility/v1/chat/completions\n{}" ]
--- more_headers
Authorization: Token co-key
--- response_body_like eval
[ qr{"path":"/v2/chat".*"authorization":"Token co-key".*"host":"api.cohere.ai"},
  qr{"path":"/v1/chat"}, qr{"path":"/v1/chat"},
  qr{"path":"/compatibility/v1/chat/completions"} ]



=== TEST 21: grok (and "xai"): /v1 added when missing
--- request eval
[ "POST /v1/acct/gw/grok/chat/completions\n{}",
  "POST /v1/acct/gw/grok/v1/messages\n{}",
  "POST /v1/acct/gw/xai/chat/completions\n{}" ]
--- response_body_like eval
[ qr{"path":"/v1/chat/completions".*"host":"api.x.ai"},
  qr{"path":"/v1/messages".*"host":"api.x.ai"},
  qr{"path":"/v1/chat/completions".*"host":"api.x.ai"} ]



=== TEST 22: groq: /openai/v1 prefix, or the SDK's own full path
--- request eval
[ "POST /v1/acct/gw/groq/chat/completions\n{}",
  "POST /v1/acct/gw/groq/openai/v1/chat/completions\n{}" ]
--- response_body_like eval
[ qr{"path":"/openai/v1/chat/completions".*"host":"api.groq.com"},
  qr{"path":"/openai/v1/chat/completions".*"host":"api.groq.com"} ]



=== TEST 23: openrouter: /api/v1 with or without the client's /v1
--- request eval
[ "POST /v1/acct/gw/openrouter/chat/completions\n{}",
  "POST /v1/acct/gw/openrouter/v1/chat/completions\n{}" ]
--- response_body_like eval
[ qr{"path":"/api/v1/chat/completions".*"host":"openrouter.ai"},
  qr{"path":"/api/v1/chat/completions".*"host":"openrouter.ai"} ]



=== TEST 24: cartesia: a leading /v1 is removed, headers kept
--- request eval
[ "POST /v1/acct/gw/cartesia/v1/tts/bytes\n{}",
  "POST /v1/acct/gw/cartesia/tts/bytes\n{}" ]
--- more_headers
X-API-Key: ca-key
Cartesia-Version: 2024-06-10
--- response_body_like eval
[ qr{"path":"/tts/bytes".*"x-api-key":"ca-key","cartesia-version":"2024-06-10".*"host":"api.cartesia.ai"},
  qr{"path":"/tts/bytes".*"host":"api.cartesia.ai"} ]



=== TEST 25: mistral, cerebras, replicate, baseten: /v1 added when missing
--- request eval
[ "POST /v1/acct/gw/mistral/chat/completions\n{}",
  "POST /v1/acct/gw/mistral/v1/embeddings\n{}",
  "POST /v1/acct/gw/cerebras/chat/completions\n{}",
  "POST /v1/acct/gw/replicate/predictions\n{}",
  "POST /v1/acct/gw/baseten/chat/completions\n{}",
  "POST /v1/acct/gw/baseten/model/abc123/predict\n{}" ]
--- response_body_like eval
[ qr{"path":"/v1/chat/completions".*"host":"api.mistral.ai"},
  qr{"path":"/v1/embeddings".*"host":"api.mistral.ai"},
  qr{"path":"/v1/chat/completions".*"host":"api.cerebras.ai"},
  qr{"path":"/v1/predictions".*"host":"api.replicate.com"},
  qr{"path":"/v1/chat/completions".*"host":"inference.baseten.co"},
  qr{"path":"/model/abc123/predict".*"host":"inference.baseten.co"} ]



=== TEST 26: deepseek, perplexity-ai (and "perplexity"), parallel: as sent
--- request eval
[ "POST /v1/acct/gw/deepseek/chat/completions\n{}",
  "POST /v1/acct/gw/perplexity-ai/chat/completions\n{}",
  "POST /v1/acct/gw/perplexity/chat/completions\n{}",
  "POST /v1/acct/gw/parallel/v1beta/search\n{}" ]
--- response_body_like eval
[ qr{"path":"/chat/completions".*"host":"api.deepseek.com"},
  qr{"path":"/chat/completions".*"host":"api.perplexity.ai"},
  qr{"path":"/chat/completions".*"host":"api.perplexity.ai"},
  qr{"path":"/v1beta/search".*"host":"api.parallel.ai"} ]



=== TEST 27: elevenlabs, ideogram, deepgram: paths, queries and key headers
--- request eval
[ "POST /v1/acct/gw/elevenlabs/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb?output_format=mp3_44100_128\n{}",
  "POST /v1/acct/gw/ideogram/v1/ideogram-v3/generate\n{}",
  "POST /v1/acct/gw/deepgram/v1/listen?model=nova-3\n{}" ]
--- more_headers
xi-api-key: el-key
Api-Key: id-key
--- response_body_like eval
[ qr{"path":"/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb","query":"output_format=mp3_44100_128".*"xi-api-key":"el-key".*"host":"api.elevenlabs.io"},
  qr{"path":"/v1/ideogram-v3/generate".*"api-key":"id-key".*"host":"api.ideogram.ai"},
  qr{"path":"/v1/listen","query":"model=nova-3".*"host":"api.deepgram.com"} ]



=== TEST 28: an unknown provider
--- request
POST /v1/acct/gw/not-a-provider/chat/completions
{}
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body chomp
{"success":false,"result":[],"messages":[],"error":[{"code":2008,"message":"Invalid provider"}],"name":"AiGatewayError","httpCode":400,"internalCode":2008,"message":"Invalid provider","description":"Invalid provider"}



=== TEST 29: every provider gets its credential header and the query as sent
--- request eval
[ map { "POST /v1/acct/gw/$_->[0]$_->[1]?k=$_->[0]&x=%2F\n{}" } @main::P ]
--- more_headers eval
[ map { "$_->[2]: key-$_->[0]" } @main::P ]
--- response_body_like eval
[ map { qr{"query":"k=$_->[0]&x=%2F","headers":\{.*"$_->[2]":"key-$_->[0]"} } @main::P ]
