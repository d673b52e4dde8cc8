# Directive parsing: what loads, and what nginx refuses to start with.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();

run_tests();

__DATA__

=== TEST 1: a minimal gateway loads; other locations are untouched
--- config
    location /v1/ {
        ai_gateway my-gateway;
    }
    location /plain {
        return 200 "plain\n";
    }
--- request
GET /plain
--- response_body
plain
--- response_headers
!cf-aig-log-id
--- no_error_log
[error]
[emerg]



=== TEST 2: every directive, at every level it is allowed
--- http_config
    ai_gateway_provider custom-a http://127.0.0.1:3/v1;
    ai_gateway_max_body_size 2m;
    ai_gateway_connect_timeout 5s;
    ai_gateway_send_timeout 5s;
    ai_gateway_read_timeout 120s;
    ai_gateway_buffer_size 32k;
    ai_gateway_ssl_verify on;
    ai_gateway_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
    ai_gateway_ssl_verify_depth 3;
    ai_gateway_ssl_protocols TLSv1.2 TLSv1.3;
--- config
    ai_gateway_provider openai http://127.0.0.1:1/v1;
    location /v1/ {
        ai_gateway gw account=acct-1;
        ai_gateway_provider azure-openai "https://{resource}.example.com/openai/deployments/{deployment}";
        ai_gateway_provider custom-b http://127.0.0.1:2 host=b.example.com auth_header=X-Key;
    }
--- request
GET /v1/acct-1/gw/nope/x
--- error_code: 400
--- no_error_log
[emerg]



=== TEST 3: unknown provider in ai_gateway_provider
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider open-ai https://api.openai.com;
    }
--- must_die
--- error_log
unknown provider "open-ai", custom providers are named "custom-{slug}"



=== TEST 4: a custom slug with invalid characters
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-Acme_1 https://api.acme.ai;
    }
--- must_die
--- error_log
invalid custom provider slug "custom-Acme_1"



=== TEST 5: a URL without a scheme
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai api.openai.com/v1;
    }
--- must_die
--- error_log
invalid URL "api.openai.com/v1": the URL must start with "http://" or "https://"



=== TEST 6: an unknown placeholder
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider azure-openai "https://{tenant}.example.com";
    }
--- must_die
--- error_log
invalid URL "https://{tenant}.example.com": unknown placeholder



=== TEST 7: a bad port, a query in the URL
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai https://api.openai.com:99999;
    }
--- must_die
--- error_log
invalid port



=== TEST 8: the same provider twice at one level
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:1;
        ai_gateway_provider openai http://127.0.0.1:2;
    }
--- must_die
--- error_log
duplicate provider "openai"



=== TEST 9: ai_gateway twice
--- config
    location /v1/ {
        ai_gateway a;
        ai_gateway b;
    }
--- must_die
--- error_log
"ai_gateway" directive is duplicate



=== TEST 10: a gateway id with a slash, an unknown parameter
--- config
    location /v1/ {
        ai_gateway a/b;
    }
--- must_die
--- error_log
invalid gateway id "a/b"



=== TEST 11: unknown ai_gateway parameter
--- config
    location /v1/ {
        ai_gateway gw tenant=x;
    }
--- must_die
--- error_log
invalid parameter "tenant=x"



=== TEST 12: unknown ai_gateway_provider parameter
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-x http://127.0.0.1:1 weight=2;
    }
--- must_die
--- error_log
invalid parameter "weight=2"



=== TEST 13: a trusted certificate file that does not exist
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_ssl_trusted_certificate /nonexistent/ca.crt;
    }
--- must_die
--- error_log
/nonexistent/ca.crt



=== TEST 14: ai_gateway_models takes {provider}/{model}
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_models openai/gpt-4o gpt-4o;
    }
--- must_die
--- error_log
invalid model "gpt-4o", use "{provider}/{model}"
