# Copyright (C) ngx_ai_gateway contributors

# $ai_gateway_* variables, read through add_header (at header time) and
# through access_log (at log time).

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("config", <<'END') unless defined $block->config;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        add_header X-Vars "$ai_gateway_id|$ai_gateway_account_id|$ai_gateway_provider|$ai_gateway_model|$ai_gateway_upstream_status|$ai_gateway_error_code|$ai_gateway_upstream_url" always;
        add_header X-Ids "$ai_gateway_log_id $ai_gateway_event_id" always;
        add_header X-TTFB "$ai_gateway_ttfb" always;
    }
END
});

run_tests();

__DATA__

=== TEST 1: a proxied request
--- request
POST /v1/acct9/gw/openai/chat/completions?x=secret
{"messages":[{"role":"user","content":"hi","model":"inner"}],"model":"gpt-4o-mini","stream":false}
--- response_headers
X-Vars: gw|acct9|openai|gpt-4o-mini|200||http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/chat/completions
--- response_headers_like
X-TTFB: 0\.\d{3}
--- no_error_log
[error]



=== TEST 2: the log and event id variables
--- request
GET /v1/acct9/gw/openai/models
--- response_headers_like
X-Ids: [0-9A-HJKMNP-TV-Z]{26} [0-9a-f-]{36}
--- response_body_like: "path"



=== TEST 3: a gateway error: the code, no upstream
--- request
GET /v1/acct9/gw/nope/models
--- error_code: 400
--- response_headers
X-Vars: gw|acct9|nope|||2008|
X-TTFB:



=== TEST 4: a provider error status and a body without a model
--- request
POST /v1/acct9/gw/openai/chat/completions
[1,2,{"model":"not-top-level"}]
--- more_headers
x-mock: status=503
--- error_code: 503
--- response_headers
X-Vars: gw|acct9|openai||503||http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/chat/completions



=== TEST 5: variables in the access log
--- http_config
    log_format aigw "$ai_gateway_id $ai_gateway_provider $ai_gateway_model $ai_gateway_upstream_status $ai_gateway_log_id";
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        access_log logs/access.log aigw;
    }
--- request
POST /v1/a/gw/openai/chat/completions
{"model":"o3"}
--- response_body_like: "body_len":14
--- access_log
gw openai o3 200



=== TEST 6: no upstream URL when the provider's path rule refuses the path
--- request
POST /v1/acct9/gw/aws-bedrock/evil.com/us-east-1/model/x/invoke
{}
--- error_code: 400
--- response_headers
X-Vars: gw|acct9|aws-bedrock|||2201|
