# Copyright (C) ngx_ai_gateway contributors

# The Unified API for translated providers (Anthropic, Gemini) end to end:
# the request the provider gets, and the OpenAI-shaped answer the client
# gets back, whole and streamed, errors included.  The translations
# themselves are tested field by field in t/unit/.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use JSON::PP ();

repeat_each(1);
no_shuffle();
no_long_string();

sub chat {
    my ($model, $extra) = @_;
    $extra //= '';
    return "POST /v1/acct/gw/compat/chat/completions\n"
         . qq({"model":"$model","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]$extra});
}

# what the provider got: the mock's record of the last request, as JSON
sub upstream_request {
    my $log = mock_log();
    my $q = $log->{requests}[-1] or return "no request";
    return JSON::PP->new->canonical->encode({
        path => $q->{path}, query => $q->{query},
        headers => $q->{headers}, body => $q->{body} });
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("config", <<'END') unless defined $block->config;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider google-ai-studio http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
END

    $block->set_value("more_headers", "Authorization: Bearer prov-key\n"
                      . ($block->more_headers // ''));

    if (!defined $block->no_error_log && !defined $block->error_log) {
        $block->set_value("no_error_log", "[error]\n[alert]\n[crit]\n");
    }
});

run_tests();

__DATA__

=== TEST 1: anthropic: the native request, with the key in x-api-key
--- request eval
main::chat("anthropic/claude-sonnet-4-5", ',"max_tokens":64')
--- more_headers
x-mock: fixture=anthropic/text.json
Accept-Encoding: gzip
--- response_body_filters eval
sub { main::upstream_request() }
--- response_body_like: ^\{"body":"\{(?=[^\n]*\\"model\\":\\"claude-sonnet-4-5\\")(?=[^\n]*\\"max_tokens\\":64)(?=[^\n]*\\"system\\"[^\n]*be brief).*","headers":\{(?!.*authorization)(?!.*accept-encoding).*"anthropic-version":"2023-06-01".*"x-api-key":"prov-key".*"path":"/v1/messages"



=== TEST 2: anthropic: the answer as a chat.completion
--- request eval
main::chat("anthropic/claude-sonnet-4-5")
--- more_headers
x-mock: fixture=anthropic/text.json
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"id":"chatcmpl-[0-9A-Z]{26}","object":"chat.completion","created":\d+,"model":"claude-sonnet-4-5-20250929","choices":\[\{"index":0,"message":\{"role":"assistant","content":"Hello! I'm doing well, thanks for asking. How are you doing today\? Is there anything I can help you with\?".*"finish_reason":"stop".*"usage":\{"prompt_tokens":12,"completion_tokens":29,"total_tokens":41



=== TEST 3: anthropic: a streamed answer as chat.completion.chunk events
--- request eval
main::chat("anthropic/claude-sonnet-4-5", ',"stream":true,"stream_options":{"include_usage":true}')
--- more_headers
x-mock: fixture=anthropic/stream-text.sse;interval=2
--- response_headers
Content-Type: text/event-stream
--- response_body_like: ^data: \{"id":"chatcmpl-[0-9A-Z]{26}","object":"chat.completion.chunk",.*"delta":\{"role":"assistant","content":""\}.*\n\ndata: .*"delta":\{"content":"Hello.*"finish_reason":"stop".*\n\ndata: \{[^\n]*"choices":\[\],"usage":\{"prompt_tokens":\d+.*\n\ndata: \[DONE\]\n\n$



=== TEST 4: anthropic: a provider error as an OpenAI error, same status
--- request eval
main::chat("anthropic/claude-sonnet-4-5")
--- more_headers
x-mock: status=400;fixture=anthropic/error-400-invalid-request.json
--- error_code: 400
--- response_body_like: ^\{"error":\{"message":"messages.2.content.0: unexpected `tool_use_id`.*","type":"invalid_request_error"



=== TEST 5: anthropic: a stream cut short ends with an error event
--- request eval
main::chat("anthropic/claude-sonnet-4-5", ',"stream":true')
--- more_headers
x-mock: fixture=anthropic/stream-text.sse;interval=2;close_after=3
--- response_body_like: "role":"assistant".*data: \{"error":\{
--- no_error_log
[alert]
[crit]



=== TEST 6: gemini: the native request, path and key
--- request eval
main::chat("google/gemini-2.5-flash")
--- more_headers
x-mock: fixture=google-gemini/text.json
--- response_body_filters eval
sub { main::upstream_request() }
--- response_body_like: ^\{"body":"\{.*\\"systemInstruction\\".*be brief.*"headers":\{(?!.*authorization).*"x-goog-api-key":"prov-key".*"path":"/v1beta/models/gemini-2.5-flash:generateContent","query":""



=== TEST 7: gemini: streamed with alt=sse, answered as chunks
--- request eval
main::chat("google-ai-studio/gemini-2.5-flash", ',"stream":true')
--- more_headers
x-mock: fixture=google-gemini/stream-text.sse;interval=2
--- response_body_like: ^data: \{"id":"chatcmpl-.*"delta":\{"role":"assistant","content":""\}.*"finish_reason":"stop".*\n\ndata: \[DONE\]\n\n$



=== TEST 8: gemini: the answer as a chat.completion
--- request eval
main::chat("google/gemini-2.5-flash")
--- more_headers
x-mock: fixture=google-gemini/text.json
--- response_body_like: ^\{"id":"chatcmpl-[0-9A-Z]{26}","object":"chat.completion".*"content":"There are \*\*3\*\* r's in strawberry.*"finish_reason":"stop"



=== TEST 9: gemini: the stream endpoint gets alt=sse
--- request eval
main::chat("google/gemini-2.5-flash", ',"stream":true')
--- more_headers
x-mock: fixture=google-gemini/stream-text.sse;interval=2
--- response_body_filters eval
sub { main::upstream_request() }
--- response_body_like: "path":"/v1beta/models/gemini-2.5-flash:streamGenerateContent","query":"alt=sse"



=== TEST 10: gemini: an error as an OpenAI error
--- request eval
main::chat("google/gemini-2.5-flash")
--- more_headers
x-mock: status=400;fixture=google-gemini/error-400-api-key-invalid.json
--- error_code: 400
--- response_body_like: ^\{"error":\{"message":"API key not valid. Please pass a valid API key."



=== TEST 11: a request the provider cannot honour is refused
--- request eval
[ main::chat("anthropic/claude-sonnet-4-5", ',"n":3'),
  main::chat("google/bad/model") ]
--- error_code eval
[400, 400]
--- response_body_like eval
[ qr/"code":2208/, qr/"code":2207,"message":"Invalid Gemini model name"/ ]



=== TEST 12: gemini embeddings: batchEmbedContents, the answer as a list
--- request
POST /v1/acct/gw/compat/embeddings
{"model":"google/text-embedding-004","input":["a","b"],"dimensions":3}
--- more_headers
x-mock: fixture=google-gemini/batch-embed.json
--- response_body_like: ^\{"object":"list","data":\[\{"object":"embedding","index":0,"embedding":\[0.5,-1,0.25\]\},\{"object":"embedding","index":1,"embedding":\[0.125,2,-0.75\]\}\],"model":"text-embedding-004"



=== TEST 13: gemini embeddings: the request the provider gets
--- request
POST /v1/acct/gw/compat/embeddings
{"model":"google/text-embedding-004","input":"hello","encoding_format":"base64"}
--- more_headers
x-mock: fixture=google-gemini/batch-embed.json
--- response_body_filters eval
sub { main::upstream_request() }
--- response_body_like: ^\{"body":"\{\\"requests\\":\[\{\\"model\\":\\"models/text-embedding-004\\",\\"content\\":\{\\"parts\\":\[\{\\"text\\":\\"hello\\"\}\]\}\}\]\}","headers":\{.*"x-goog-api-key":"prov-key".*"path":"/v1beta/models/text-embedding-004:batchEmbedContents","query":""
