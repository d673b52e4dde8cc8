# Copyright (C) ngx_ai_gateway contributors

# Every error the gateway produces, in the gateway's envelope with its
# status and code; provider errors pass through untouched; the log and
# event ids are on every response.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
no_long_string();

our $ULID = qr/[0-9A-HJKMNP-TV-Z]{26}/;

sub envelope {
    my ($status, $code, $msg) = @_;
    return qq({"success":false,"result":[],"messages":[],)
         . qq("error":[{"code":$code,"message":"$msg"}],)
         . qq("name":"AiGatewayError","httpCode":$status,)
         . qq("internalCode":$code,"message":"$msg","description":"$msg"});
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("config", <<'END') unless defined $block->config;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
END
});

run_tests();

__DATA__

=== TEST 1: unknown provider: 400, code 2008, exact envelope and headers
--- request
POST /v1/acct/gw/nope/chat/completions
{"model":"x"}
--- error_code: 400
--- response_headers_like
Content-Type: application/json
cf-aig-log-id: [0-9A-HJKMNP-TV-Z]{26}
cf-aig-event-id: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}
cf-aig-step: 0
--- response_body eval
main::envelope(400, 2008, "Invalid provider")
--- no_error_log
[error]



=== TEST 2: another gateway id in the path: 2001
--- request
POST /v1/acct/other-gw/openai/chat/completions
{}
--- error_code: 400
--- response_body eval
main::envelope(400, 2001, "Please configure AI Gateway in the Cloudflare dashboard")



=== TEST 3: the account is checked when configured
--- config
    location /v1/ {
        ai_gateway gw account=acct1;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
[ "POST /v1/acct2/gw/openai/chat/completions\n{}",
  "POST /v1/acct1/gw/openai/chat/completions\n{}" ]
--- error_code eval
[400, 200]
--- response_body_like eval
[ qr/"code":2001/, qr/"path":"\/v1\/chat\/completions"/ ]



=== TEST 4: malformed gateway paths: 2201
--- config
    location /v {
        ai_gateway gw;
    }
--- request eval
[ "GET /v2/acct/gw/openai/models", "GET /v1/acct", "GET /v1//gw/openai/x",
  "GET /v1/acct//openai/x", "GET /v1/acct/gw//models" ]
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body eval
[ (main::envelope(400, 2201, "Malformed gateway path: expected /v1/{account_id}/{gateway_id}/{provider}/...")) x 5 ]



=== TEST 5: the Universal Endpoint: an empty array of steps is a 400, with or without the slash
--- request eval
[ "POST /v1/acct/gw\n[]", "POST /v1/acct/gw/\n[]" ]
--- error_code eval
[400, 400]
--- response_body_like eval
[ qr/"code":2208,"message":"The Universal Endpoint takes 1 to 16 steps"/,
  qr/"code":2208,"message":"The Universal Endpoint takes 1 to 16 steps"/ ]



=== TEST 6: a body over ai_gateway_max_body_size: 413, 2202
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_max_body_size 1k;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
"POST /v1/acct/gw/openai/chat/completions\n" . ("x" x 2000)
--- error_code: 413
--- response_body eval
main::envelope(413, 2202, "Request body too large")



=== TEST 7: a chunked body over the limit: 413, 2202
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_max_body_size 10;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- raw_request eval
"POST /v1/acct/gw/openai/chat/completions HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
8\r
12345678\r
8\r
12345678\r
0\r
\r
"
--- error_code: 413
--- response_body eval
main::envelope(413, 2202, "Request body too large")



=== TEST 8: a body at the limit passes
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_max_body_size 1k;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
"POST /v1/acct/gw/openai/chat/completions\n" . ("x" x 1024)
--- response_body_like: "body_len":1024



=== TEST 8a: the user's client_max_body_size is kept: the smaller limit counts
--- config
    location /v1/ {
        ai_gateway gw;
        client_max_body_size 100;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
"POST /v1/acct/gw/openai/chat/completions\n" . ("x" x 200)
--- error_code: 413
--- response_body eval
main::envelope(413, 2202, "Request body too large")
--- no_error_log
[alert]



=== TEST 8b: a client_max_body_size larger than nginx's default is kept too
--- config
    location /v1/ {
        ai_gateway gw;
        client_max_body_size 3m;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
"POST /v1/acct/gw/openai/chat/completions\n" . ("x" x 2_000_000)
--- response_body_like: "body_len":2000000



=== TEST 9: provider unreachable: 502, 2005
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:1;
    }
--- request
POST /v1/acct/gw/openai/chat/completions
{}
--- error_code: 502
--- response_body eval
main::envelope(502, 2005, "Failed to get response from provider")
--- error_log
connect() failed (111: Connection refused)



=== TEST 10: provider too slow: 504, 2203
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_read_timeout 300ms;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/acct/gw/openai/chat/completions
{}
--- more_headers
x-mock: hang=1
--- error_code: 504
--- response_body eval
main::envelope(504, 2203, "Provider did not respond in time")
--- error_log
upstream timed out



=== TEST 11: provider sends garbage: 502
--- request
POST /v1/acct/gw/openai/chat/completions
{}
--- more_headers
x-mock: garbage=1
--- error_code: 502
--- response_body eval
main::envelope(502, 2005, "Failed to get response from provider")
--- error_log
ai_gateway: provider sent no valid HTTP/1.x status line



=== TEST 12: provider resets the connection: 502
--- request
POST /v1/acct/gw/openai/chat/completions
{}
--- more_headers
x-mock: reset=1
--- error_code: 502
--- response_body_like: "code":2005



=== TEST 13: provider errors pass through untouched (status, headers, body)
--- request
POST /v1/acct/gw/anthropic/v1/messages
{}
--- more_headers
x-mock: status=400;fixture=anthropic/error-400-invalid-request.json
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_headers_like
cf-aig-log-id: [0-9A-HJKMNP-TV-Z]{26}
--- response_body eval
do { open my $f, '<:raw', 't/fixtures/anthropic/error-400-invalid-request.json'; local $/; <$f> }
--- no_error_log
[error]



=== TEST 14: a provider 429 and 500 pass through untouched
--- request eval
[ "POST /v1/acct/gw/openai/chat/completions\n{}",
  "POST /v1/acct/gw/openai/chat/completions\n{}" ]
--- more_headers eval
[ "x-mock: status=429", "x-mock: status=500" ]
--- error_code eval
[429, 500]
--- response_body eval
[ '{"error":{"message":"mock error 429","type":"mock_error","param":null,"code":null}}',
  '{"error":{"message":"mock error 500","type":"mock_error","param":null,"code":null}}' ]



=== TEST 15: a client event id is echoed back, a bad one replaced
--- request eval
[ "GET /v1/acct/gw/openai/models", "GET /v1/acct/gw/openai/models" ]
--- more_headers eval
[ "cf-aig-event-id: my-event-42", "cf-aig-event-id: has space" ]
--- response_headers_like eval
[ "cf-aig-event-id: my-event-42", "cf-aig-event-id: [0-9a-f]{8}-.*" ]



=== TEST 16: errors keep the client connection alive
--- pipelined_requests eval
[ "GET /v1/acct/gw/nope/x", "GET /v1/acct/gw/openai/models" ]
--- error_code eval
[400, 200]
--- response_body_like eval
[ qr/"code":2008/, qr/"path":"\/v1\/models"/ ]



=== TEST 17: HEAD of an error has the headers and no body
--- request
HEAD /v1/acct/gw/nope/x
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body chomp



=== TEST 18: dot segments are refused (routing and forwarding are raw)
--- request eval
[ "GET /v1/acct/gw/openai/../anthropic/v1/models",
  "GET /v1/acct/gw/openai/v1/./models",
  "GET /v1/acct/gw/openai/%2e%2E/x",
  "GET /v1/acct/gw/openai/v1/.%2e",
  "GET /v1/acct/gw/openai/v1/..." ]
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body_like eval
[ (qr/"code":2201/) x 4, qr{"path":"/v1/\.\.\."} ]



=== TEST 19: nginx's own 401, 403 and 429 in the envelope
--- config
    location /v1/ {
        ai_gateway gw;
        limit_except GET { deny all; }
    }
    location /v1/acct/gw/x/ {
        ai_gateway gw;
        return 401;
    }
--- request eval
[ "POST /v1/acct/gw/openai/models", "GET /v1/acct/gw/x/y" ]
--- error_code eval
[403, 401]
--- response_body_like eval
[ qr/"error":\[\{"code":2206,"message":"Forbidden"\}\]/,
  qr/"error":\[\{"code":2009,"message":"Unauthorized"\}\]/ ]
