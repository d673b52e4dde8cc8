# Copyright (C) ngx_ai_gateway contributors

# The upstream side: base URL overrides, custom providers, keepalive pools,
# TLS verification, bodies large and small, and what is (not) forwarded.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->no_error_log && !defined $block->error_log) {
        $block->set_value("no_error_log", "[error]\n[alert]\n[crit]\n");
    }
});

run_tests();

__DATA__

=== TEST 1: a built-in provider's base URL overridden (plain http)
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/acct/gw/openai/chat/completions
{"model":"gpt-4o"}
--- response_body_like: "path":"/v1/chat/completions".*"host":"127.0.0.1:\d+","sni":null,"tls":false



=== TEST 2: an override with a path prefix: the provider's rules still apply
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT/proxy/openai/;
    }
--- request eval
[ "POST /v1/acct/gw/openai/chat/completions\n{}",
  "POST /v1/acct/gw/openai/proxy/openai/v1/chat/completions\n{}" ]
--- response_body_like eval
[ qr{"path":"/proxy/openai/v1/chat/completions"},
  qr{"path":"/proxy/openai/v1/chat/completions"} ]



=== TEST 3: overrides inherited from the server level and merged by slug
--- config
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT/outer;
    ai_gateway_provider mistral http://127.0.0.1:$TEST_NGINX_MOCK_PORT/outer;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider mistral http://127.0.0.1:$TEST_NGINX_MOCK_PORT/inner;
    }
--- request eval
[ "POST /v1/acct/gw/openai/chat/completions\n{}",
  "POST /v1/acct/gw/mistral/chat/completions\n{}" ]
--- response_body_like eval
[ qr{"path":"/outer/v1/chat/completions"},
  qr{"path":"/inner/v1/chat/completions"} ]



=== TEST 4: a custom provider: the path is appended to its base URL as is
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-acme http://127.0.0.1:$TEST_NGINX_MOCK_PORT/api/v2 auth_header=x-acme-key;
    }
--- request
POST /v1/acct/gw/custom-acme/v1/chat/completions?stream=false
{"model":"acme-1"}
--- more_headers
x-acme-key: secret
--- response_body_like: "path":"/api/v2/v1/chat/completions","query":"stream=false".*"x-acme-key":"secret"



=== TEST 5: an undeclared custom provider is an invalid provider
--- config
    location /v1/ {
        ai_gateway gw;
    }
--- request
POST /v1/acct/gw/custom-nope/chat
{}
--- error_code: 400
--- response_body_like: "error":\[\{"code":2008,"message":"Invalid provider"\}\]



=== TEST 6: keepalive: an upstream{} block named in the URL reuses connections
--- http_config
    upstream mock_pool {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 4;
    }
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://mock_pool host=api.openai.com;
    }
--- request eval
[ "POST /v1/acct/gw/openai/chat/completions\n{}",
  "POST /v1/acct/gw/openai/chat/completions\n{}",
  "GET /v1/acct/gw/openai/models" ]
--- response_body_like eval
[ qr{"host":"api.openai.com".*"conn_requests":1},
  qr{"host":"api.openai.com".*"conn_requests":2},
  qr{"method":"GET".*"conn_requests":3} ]



=== TEST 7: keepalive for the built-in hosts: an upstream{} named after them
--- http_config
    $TEST_NGINX_PROVIDER_UPSTREAMS
--- config
    location /v1/ {
        ai_gateway gw;
        $TEST_NGINX_TLS_CONFIG
    }
--- request eval
[ "POST /v1/acct/gw/anthropic/v1/messages\n{}",
  "POST /v1/acct/gw/anthropic/v1/messages\n{}",
  "GET /v1/acct/gw/anthropic/v1/models",
  "GET /v1/acct/gw/anthropic/v1/models" ]
--- response_body_like eval
[ qr{"sni":"api.anthropic.com","tls":true,"conn_id":(\d+),"conn_requests":1},
  qr{"sni":"api.anthropic.com","tls":true,"conn_id":(\d+),"conn_requests":2},
  qr{"method":"GET".*"tls":true,"conn_id":(\d+),"conn_requests":3},
  qr{"method":"GET".*"tls":true,"conn_id":(\d+),"conn_requests":4} ]



=== TEST 8: TLS: the certificate is verified against the trusted CA, SNI sent
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-tls https://localhost:$TEST_NGINX_MOCK_TLS_PORT;
        $TEST_NGINX_TLS_CONFIG
    }
--- request
POST /v1/acct/gw/custom-tls/v1/chat
{}
--- response_body_like: "host":"localhost:\d+","sni":"localhost","tls":true



=== TEST 9: TLS: a certificate from another CA is refused
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-tls https://localhost:$TEST_NGINX_MOCK_BADTLS_PORT;
        $TEST_NGINX_TLS_CONFIG
    }
--- request
POST /v1/acct/gw/custom-tls/v1/chat
{}
--- error_code: 502
--- response_body_like: "error":\[\{"code":2005,"message":"Failed to get response from provider"\}\]
--- error_log
upstream SSL certificate verify error



=== TEST 10: TLS: a certificate for another name is refused
--- http_config
    upstream wrong.example.net {
        server 127.0.0.1:$TEST_NGINX_MOCK_TLS_PORT;
    }
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-tls https://wrong.example.net;
        $TEST_NGINX_TLS_CONFIG
    }
--- request
POST /v1/acct/gw/custom-tls/v1/chat
{}
--- error_code: 502
--- error_log
upstream SSL certificate does not match "wrong.example.net"



=== TEST 11: TLS: ai_gateway_ssl_verify off accepts any certificate
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_ssl_verify off;
        ai_gateway_provider custom-tls https://localhost:$TEST_NGINX_MOCK_BADTLS_PORT;
    }
--- request
POST /v1/acct/gw/custom-tls/v1/chat
{}
--- response_body_like: "sni":"localhost","tls":true



=== TEST 12: cf-aig-* and hop-by-hop headers are not forwarded, others are, in order
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/acct/gw/openai/chat/completions
{}
--- more_headers
Authorization: Bearer sk-1
cf-aig-authorization: Bearer gateway-token
cf-aig-cache-ttl: 3600
CF-AIG-Metadata: {"user":1}
cf-skip-cache: true
cf-cache-ttl: 60
X-First: 1
Connection: close, X-Hop
X-Hop: secret
Keep-Alive: timeout=5
TE: trailers
Proxy-Authorization: Basic abc
Upgrade: h2c
OpenAI-Organization: org-1
X-Last: 2
--- response_body_like: "raw_headers":\[\["Host","127.0.0.1:\d+"\],\["Authorization","Bearer sk-1"\],\["X-First","1"\],\["OpenAI-Organization","org-1"\],\["X-Last","2"\],\["Content-Length","2"\]\]



=== TEST 13: a 1 MiB request body is forwarded byte for byte
--- config
    client_body_buffer_size 64k;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
"POST /v1/acct/gw/openai/chat/completions\n" . ('{"model":"m","x":"' . ('a' x (1048576 - 20)) . '"}')
--- response_body_like: "body_len":1048576,"body_sha256":"1c51c34cbfcf7b4831407f82557319952a635c551807818d6e52618defb57f0e"
--- timeout: 10



=== TEST 14: a chunked request body is forwarded with a Content-Length
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- raw_request eval
"POST /v1/acct/gw/openai/chat/completions HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
5\r
{\"a\":\r
3\r
12}\r
0\r
\r
"
--- response_body_like: "body":"\{\\"a\\":12\}","body_len":8



=== TEST 15: an 8 MiB response body passes through whole
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
GET /v1/acct/gw/openai/files/f1/content
--- more_headers
x-mock: size=8388608
--- response_headers
Content-Length: 8388608
--- response_body_like eval
qr/\A\{"data":"(?:x{1000}){8388}x*"\}\z/s
--- timeout: 20



=== TEST 16: a large chunked response passes through whole
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
GET /v1/acct/gw/openai/files/f1/content
--- more_headers
x-mock: size=3000000;chunked=1
--- response_body_like eval
qr/\A\{"data":"(?:x{1000}){2999}x*"\}\z/s
--- timeout: 20



=== TEST 17: methods, HEAD and an empty body
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
[ "DELETE /v1/acct/gw/openai/files/f1", "PUT /v1/acct/gw/openai/x\n", "GET /v1/acct/gw/openai/models?x=1" ]
--- response_body_like eval
[ qr{"method":"DELETE","path":"/v1/files/f1"}, qr{"method":"PUT"},
  qr{"method":"GET","path":"/v1/models","query":"x=1"} ]



=== TEST 18: provider response headers reach the client, provider ids hidden
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/acct/gw/anthropic/v1/messages
{}
--- more_headers
x-mock: fixture=anthropic/text.json;header=anthropic-ratelimit-requests-remaining:49;header=cf-aig-log-id:upstream-id
--- response_headers
anthropic-ratelimit-requests-remaining: 49
Content-Type: application/json
--- response_headers_like
request-id: req_mock_\d+
cf-aig-log-id: [0-9A-HJKMNP-TV-Z]{26}
--- response_body_like: "type": "message"



=== TEST 19: run-time names go through nginx's resolver
--- config
    resolver 127.0.0.1:$TEST_NGINX_MOCK_DNS_PORT ipv6=off;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider azure-openai "http://{resource}.azure.test:$TEST_NGINX_MOCK_PORT/openai/deployments/{deployment}";
    }
--- request
POST /v1/acct/gw/azure-openai/res1/dep1/chat/completions?api-version=1
{}
--- response_body_like: "path":"/openai/deployments/dep1/chat/completions","query":"api-version=1".*"host":"res1.azure.test:\d+"



=== TEST 20: a name that does not resolve: 502 in the envelope
--- config
    resolver 127.0.0.1:$TEST_NGINX_MOCK_DNS_PORT ipv6=off;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider azure-openai "http://nx.{resource}.azure.test:$TEST_NGINX_MOCK_PORT/openai/deployments/{deployment}";
    }
--- request
POST /v1/acct/gw/azure-openai/res1/dep1/chat/completions?api-version=1
{}
--- error_code: 502
--- response_body_like: "code":2005
--- error_log
could not be resolved (3: Host not found)



=== TEST 21: a built-in host is looked up with the resolver when no upstream{} names it
--- config
    resolver 127.0.0.1:$TEST_NGINX_MOCK_DNS_PORT ipv6=off;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_connect_timeout 1s;
    }
--- request eval
[ "GET /v1/acct/gw/openai/models", "GET /v1/acct/gw/openai/models" ]
--- error_code eval
[502, 502]
--- response_body_like eval
[ qr/^looked up api.openai.com: .*"code":2005/, qr/"code":2005/ ]
--- response_body_filters eval
sub {
    my $log = main::mock_log();
    my @q = grep { $_->{name} eq 'api.openai.com' } @{ $log->{dns} };
    return scalar(@q) ? "looked up api.openai.com: " . $_[0] : $_[0];
}
--- error_log
connect() failed (111: Connection refused) while connecting to upstream
