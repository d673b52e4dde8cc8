# Copyright (C) ngx_ai_gateway contributors

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
--- error_log eval
qr/unknown provider "open-ai" in "ai_gateway_provider" directive, it must be one of anthropic, aws-bedrock, azure-openai, .*openai, .*, or a custom provider named "custom-\{slug\}"/



=== TEST 4: a custom slug with invalid characters
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-Acme_1 https://api.acme.ai;
    }
--- must_die
--- error_log
invalid custom provider slug "custom-Acme_1" in "ai_gateway_provider" directive, after "custom-" it must have lowercase letters, digits and hyphens only



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
duplicate provider "openai" in "ai_gateway_provider" directive



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
invalid gateway id "a/b" in "ai_gateway" directive, it must have 1 to 64 characters, none of them "/", "?", a space or a control character



=== TEST 11: unknown ai_gateway parameter
--- config
    location /v1/ {
        ai_gateway gw tenant=x;
    }
--- must_die
--- error_log
invalid parameter "tenant=x" in "ai_gateway" directive, the only parameter is "account=ID"



=== TEST 12: unknown ai_gateway_provider parameter
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider custom-x http://127.0.0.1:1 weight=2;
    }
--- must_die
--- error_log
invalid parameter "weight=2" in "ai_gateway_provider" directive, it must be "host=name" or "auth_header=name"



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
invalid model "gpt-4o" in "ai_gateway_models" directive, it must be "{provider}/{model}", e.g. "openai/gpt-4o-mini"



=== TEST 15: ai_gateway_models with an unknown provider says so
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_models openai/gpt-4o open-ai/gpt-4o;
    }
--- must_die
--- error_log eval
qr/unknown provider "open-ai" of model "open-ai\/gpt-4o" in "ai_gateway_models" directive, it must be one of anthropic, aws-bedrock, .* or "custom-\{slug\}"/
--- no_error_log
invalid model



=== TEST 16: ai_gateway_cache names a zone never declared: the place of the reference
--- config
    location /v1/ {
        ai_gateway gw;

        ai_gateway_cache nozone;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown zone "nozone" in "ai_gateway_cache" directive in \S+\/nginx\.conf:\d+, it must be declared with "ai_gateway_cache_zone nozone:size" in http\{\}, or the cache turned off with "ai_gateway_cache off"/
--- no_error_log
zero size shared memory zone



=== TEST 17: the file and line of an undeclared zone's reference, in an include
--- user_files
>>> cache.conf
# the cache of this gateway

ai_gateway_cache missing;
--- config
    location /v1/ {
        ai_gateway gw;
        include ../html/cache.conf;
    }
--- must_die
--- error_log eval
qr/unknown zone "missing" in "ai_gateway_cache" directive in \S+\/html\/cache\.conf:3,/



=== TEST 18: a zone declared after its reference is found
--- http_config
    ai_gateway_cache later;
    ai_gateway_cache_zone later:1m;
--- config
    location /v1/ {
        ai_gateway gw;
    }
    location /plain {
        return 200 "plain\n";
    }
--- request
GET /plain
--- response_body
plain
--- no_error_log
[emerg]



=== TEST 19: a time: the directive, the value, what a time looks like
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_connect_timeout 5x;
    }
--- must_die
--- error_log
invalid value "5x" in "ai_gateway_connect_timeout" directive, it must be a time, e.g. "500ms", "30s" or "2m"



=== TEST 20: a size
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_buffer_size 16q;
    }
--- must_die
--- error_log
invalid value "16q" in "ai_gateway_buffer_size" directive, it must be a size, e.g. "16k" or "1m"



=== TEST 21: ai_gateway_max_body_size
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_max_body_size lots;
    }
--- must_die
--- error_log
invalid value "lots" in "ai_gateway_max_body_size" directive, it must be a size, e.g. "16k" or "1m"



=== TEST 22: ai_gateway_retry_backoff: the names allowed, no bare "invalid value"
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_retry_backoff fibonacci;
    }
--- must_die
--- error_log
invalid value "fibonacci" in "ai_gateway_retry_backoff" directive, it must be "constant", "linear" or "exponential"
--- no_error_log eval
qr/invalid value "fibonacci" in \//



=== TEST 23: ai_gateway_max_attempts out of its bounds
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_max_attempts 9;
    }
--- must_die
--- error_log
invalid value "9" in "ai_gateway_max_attempts" directive, it must be a number from 1 to 5
--- no_error_log
value must be between



=== TEST 24: ai_gateway_retry_delay over 5s, at the directive's line
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_retry_delay 6s;
    }
--- must_die
--- error_log
invalid value "6s" in "ai_gateway_retry_delay" directive, it must be a time from 0 to 5s



=== TEST 25: ai_gateway_cache_ttl over 30d
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_cache_ttl 31d;
    }
--- must_die
--- error_log
invalid value "31d" in "ai_gateway_cache_ttl" directive, it must be a time from 0 to 30d



=== TEST 26: ai_gateway_ssl_protocols: the protocols allowed
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_ssl_protocols TLSv1.2 TLSv1.4;
    }
--- must_die
--- error_log
invalid value "TLSv1.4" in "ai_gateway_ssl_protocols" directive, it must be one or more of "TLSv1", "TLSv1.1", "TLSv1.2" and "TLSv1.3"



=== TEST 27: ai_gateway_ssl_verify_depth
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_ssl_verify_depth deep;
    }
--- must_die
--- error_log
invalid value "deep" in "ai_gateway_ssl_verify_depth" directive, it must be a number



=== TEST 28: ai_gateway_cache_scope
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_cache_scope everyone;
    }
--- must_die
--- error_log
invalid value "everyone" in "ai_gateway_cache_scope" directive, it must be "credential" or "gateway"



=== TEST 29: ai_gateway_cache_zone without a size
--- http_config
    ai_gateway_cache_zone aigw;
--- config
    location /v1/ {
        ai_gateway gw;
    }
--- must_die
--- error_log
invalid zone "aigw" in "ai_gateway_cache_zone" directive, it must be "name:size", e.g. "aigw:10m"



=== TEST 30: ai_gateway_cache_zone too small
--- http_config
    ai_gateway_cache_zone aigw:4k;
--- config
    location /v1/ {
        ai_gateway gw;
    }
--- must_die
--- error_log eval
qr/zone "aigw:4k" is too small in "ai_gateway_cache_zone" directive, its size must be at least \d+k/



=== TEST 31: ai_gateway_redis: a host name is no address
--- http_config
    ai_gateway_redis r redis.example.com:6379;
--- config
    location /v1/ {
        ai_gateway gw;
    }
--- must_die
--- error_log
invalid Redis address "redis.example.com:6379" in "ai_gateway_redis" directive, it must be "IPv4-address:port", e.g. "127.0.0.1:6379"



=== TEST 32: ai_gateway_redis: an unknown parameter
--- http_config
    ai_gateway_redis r 127.0.0.1:6379 pool=4;
--- config
    location /v1/ {
        ai_gateway gw;
    }
--- must_die
--- error_log
invalid parameter "pool=4" in "ai_gateway_redis" directive, it must be "timeout=", "db=", "user=" or "password_file="



=== TEST 33: ai_gateway_cache_redis: an unknown parameter, a bad timeout
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_cache_redis 127.0.0.1:6379 timeout=soon;
    }
--- must_die
--- error_log
invalid timeout "timeout=soon" in "ai_gateway_cache_redis" directive, it must be a time above 0, e.g. "timeout=500ms"



=== TEST 34: ai_gateway_cache_redis: the parameters allowed
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_cache_redis 127.0.0.1:6379 pool=4;
    }
--- must_die
--- error_log
invalid parameter "pool=4" in "ai_gateway_cache_redis" directive, it must be "prefix=", "timeout=", "db=", "user=" or "password_file="



=== TEST 35: the version, at notice, when nginx starts
--- log_level: notice
--- config
    location /v1/ {
        ai_gateway gw;
    }
    location /plain {
        return 200 "plain\n";
    }
--- request
GET /plain
--- response_body
plain
--- error_log eval
qr/\[notice\] .*ai_gateway: ngx_ai_gateway\/\d+\.\d+\.\d+$/



=== TEST 36: a Redis password file that cannot be opened: the directive and the file
--- http_config
    ai_gateway_redis r 127.0.0.1:6379 password_file=/nonexistent/redis.pass;
--- config
    location /v1/ {
        ai_gateway gw;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"ai_gateway_redis" directive: cannot open the Redis password file "\/nonexistent\/redis\.pass" \(2: No such file or directory\)/
