# Copyright (C) ngx_ai_gateway contributors

# A worker that exits gracefully (SIGQUIT, with a master process) closes
# its connection to Redis: nginx reports no open socket left and does not
# abort.

use lib 't/lib';
use AIGW::Test;
use AIGW::Redis;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
master_on();

our @PIDS;

BEGIN {
    $ENV{TEST_NGINX_EXIT_REDIS_PORT} = redis_free_port();
}

push @PIDS, redis_start($ENV{TEST_NGINX_EXIT_REDIS_PORT});

END {
    local $?;
    redis_stop($_) for @PIDS;
}

run_tests();

__DATA__

=== TEST 1: requests through a Redis cache, then a graceful exit
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_EXIT_REDIS_PORT prefix=t084:;
        ai_gateway_cache_ttl 60;
    }
--- request eval
[ qq(POST /v1/acct/gw/openai/chat/completions\n{"model":"m","n":1}),
  qq(POST /v1/acct/gw/openai/chat/completions\n{"model":"m","n":1}),
  qq(POST /v1/acct/gw/openai/chat/completions\n{"model":"m","n":2}) ]
--- response_headers eval
[ "cf-aig-cache-status: MISS", "cf-aig-cache-status: HIT",
  "cf-aig-cache-status: MISS" ]
--- no_error_log
[alert]
[crit]
--- no_shutdown_error_log
open socket
aborting
