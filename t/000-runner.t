# Copyright (C) ngx_ai_gateway contributors

# Self-test of the minimal Test::Nginx::Socket implementation in t/lib,
# using plain nginx only (no custom module).  Also valid for upstream
# Test::Nginx::Socket.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(2);
no_shuffle();

# per repeat: sum of the per-block assertion counts noted below; plus the
# single shutdown_error_log check of TEST 15 and the final is() below.
plan tests => repeat_each() * 64 + 2;

# Blocks without a --- request get a default one (exercises set_value).
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->request && !defined $block->raw_request
        && !defined $block->pipelined_requests)
    {
        $block->set_value("request", "GET /t\n");
    }
});

my $body_checks = 0;
add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    $body_checks++;
});

run_tests();

is($body_checks, repeat_each() * 15,
   "add_response_body_check callback ran once per response");

__DATA__

=== TEST 1: plain return, headers, absent header (7)
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
GET /t
--- response_headers
Content-Type: text/plain
Content-Length: 6
!X-Absent
--- response_body
hello
--- no_error_log
[error]
[alert]



=== TEST 2: more_headers and $TEST_NGINX_* expansion (4)
--- config
    location = /hdr {
        add_header X-Port $server_port;
        add_header X-Echo $http_x_port_echo;
        return 200 "foo=$http_x_foo port=$TEST_NGINX_SERVER_PORT\n";
    }
--- request
GET /hdr
--- more_headers
X-Foo: bar
X-Port-Echo: $TEST_NGINX_SERVER_PORT
--- response_headers
X-Port: $TEST_NGINX_SERVER_PORT
X-Echo: $TEST_NGINX_SERVER_PORT
--- response_body
foo=bar port=$TEST_NGINX_SERVER_PORT



=== TEST 3: response_headers_like, response_body_like, error_log (5)
--- config
    location = /like {
        add_header X-Time "t-$msec";
        return 200 "time is $msec\n";
    }
--- request
GET /like
--- response_headers_like
X-Time: t-\d+\.\d{3}
Content-Type: text/.*
--- response_body_like chomp
^time is \d+\.\d+$
--- error_log
http request line: "GET /like HTTP/1.1"



=== TEST 4: POST body (Content-Length computed by the runner) (3)
--- config
    location = /echo {
        client_body_buffer_size 1m;
        proxy_set_header X-Body $request_body;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sink;
    }
    location = /sink {
        return 200 "got: $http_x_body ($http_content_length)\n";
    }
--- request
POST /echo
hello world
--- response_body
got: hello world (11)
--- no_error_log
[error]



=== TEST 5: fake TCP upstream, chunked response decoded (7)
--- config
    location = /up {
        proxy_set_header Host backend;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request
GET /up
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query eval
"GET /up HTTP/1.0\r\nHost: backend\r\nConnection: close\r\n\r\n"
--- tcp_reply eval
["HTTP/1.1 200 OK\r\nContent-Type: text/x-fake\r\nTransfer-Encoding: chunked\r\n\r\n",
 "5\r\nhello\r\n", "7\r\n, world\r\n", "0\r\n\r\n"]
--- response_headers
Content-Type: text/x-fake
Transfer-Encoding: chunked
X-Absent:
--- response_body: hello, world
--- no_error_log
[error]



=== TEST 6: client timeout with --- abort (1)
--- config
    location = /slow {
        proxy_read_timeout 5s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request
GET /slow
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 1s
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\nlate"
--- timeout: 200ms
--- abort
--- ignore_response
--- error_log
client prematurely closed connection



=== TEST 7: bad config must die (4)
--- config
    location = /t {
        return a b c;
    }
--- request
GET /t
--- must_die
--- error_log
[emerg]
invalid number of arguments in "return" directive
--- no_error_log
[error]



=== TEST 8: array of requests with arrays of expectations (6)
--- config
    location = /a { return 200 "a\n"; }
    location = /b { return 404; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 404]
--- response_body eval
["a\n", qr/404 Not Found/]
--- no_error_log
[error]



=== TEST 9: user_files with a timestamp (5)
--- user_files
>>> foo.txt 201001021530.00
Hello from a file
--- config
    location /static/ {
        alias $TEST_NGINX_HTML_DIR/;
    }
--- request
GET /static/foo.txt
--- response_headers
Last-Modified: Sat, 02 Jan 2010 15:30:00 GMT
Content-Length: 18
--- response_body
Hello from a file
--- no_error_log
[error]



=== TEST 10: 404 with error_log eval and grep_error_log (5)
--- config
    location /static/ {
        alias $TEST_NGINX_HTML_DIR/;
    }
--- request
GET /static/missing.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log eval
[qr/open\(\) ".*?missing\.txt" failed/, "[error]"]
--- grep_error_log eval: qr/\(\d+: No such file or directory\)/
--- grep_error_log_out
(2: No such file or directory)



=== TEST 11: pipelined requests (4)
--- config
    location = /p1 { return 200 "one\n"; }
    location = /p2 { return 200 "two\n"; }
--- pipelined_requests eval
["GET /p1", "GET /p2"]
--- error_code eval
[200, 200]
--- response_body eval
["one\n", "two\n"]



=== TEST 12: raw_request (3)
--- config
    location = /t {
        return 200 "host=$host raw=$http_x_raw proto=$server_protocol\n";
    }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: example.com\r\nX-Raw: 1\r\n\r\n"
--- raw_response_headers_like: ^HTTP/1\.1 200 OK\r\n
--- response_body
host=example.com raw=1 proto=HTTP/1.0



=== TEST 13: HEAD request (3)
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
HEAD /t
--- response_headers
Content-Length: 6
--- response_body



=== TEST 14: chunked request body (2)
--- config
    location = /echo {
        client_body_buffer_size 1m;
        proxy_set_header X-Body $request_body;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sink;
    }
    location = /sink {
        return 200 "got: $http_x_body\n";
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"POST /echo\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
--- response_body
got: hello world



=== TEST 15: default request from the preprocessor, wait, shutdown log (2 + 1 per block)
--- config
    location = /t {
        return 200 "ok\n";
    }
--- wait: 0.01
--- response_body
ok
--- shutdown_error_log
exit



=== TEST 16: skip_nginx (3)
--- skip_nginx: 3: > 0.1.0
--- config
    location = /t {
        return 500;
    }
--- response_body
never checked
--- error_log
never checked



=== TEST 17: skipped by Test::Base (0)
--- SKIP
--- config
    location = /t { return 500; }
--- response_body
never checked
