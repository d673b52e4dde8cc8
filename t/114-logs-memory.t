# Copyright (C) ngx_ai_gateway contributors

# Memory over a long run with the log store full: thousands of requests
# (native, streamed, /compat, with payloads) and Logs API reads against a
# store that holds its ai_gateway_logs_max records and deletes the oldest,
# in the shared memory zone and in Redis.  The worker's resident memory is
# measured after a warm-up and at the end; it must stay flat.  Skipped
# under valgrind (its own memory is what it would measure).

use lib 't/lib';
use AIGW::Test;
use AIGW::Redis;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use IO::Socket::INET ();
use JSON::PP ();
use Time::HiRes qw(time);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
our $REDIS_PID;

BEGIN { $ENV{TEST_NGINX_REDIS_PORT} = redis_free_port() }

$REDIS_PID = redis_start($ENV{TEST_NGINX_REDIS_PORT});

END { local $?; redis_stop($REDIS_PID) }

sub rss_kb {
    open my $f, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid" or return 0;
    my $pid = <$f>;
    chomp $pid;
    close $f;
    open my $s, '<', "/proc/$pid/status" or return 0;
    my ($kb) = map { /^VmRSS:\s+(\d+)/ ? $1 : () } <$s>;
    close $s;
    return $kb;
}

# one request in one write (no Nagle wait), the answer read to its end

sub req {
    my ($method, $path, $body, @h) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    $body //= '';
    syswrite($s, "$method $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 . join('', map { "$_\r\n" } @h)
                 . "Content-Type: application/json\r\n"
                 . "Authorization: Bearer sk-memory\r\n"
                 . "Content-Length: " . length($body) . "\r\n\r\n$body");
    my $all = '';
    while (sysread($s, my $buf, 65536)) { $all .= $buf }
    close $s;
    return $all;
}

sub one_round {
    my ($i) = @_;
    my $pad = 'p' x (200 + $i % 500);
    req('POST', '/v1/acct/gw/openai/chat/completions',
        qq({"model":"m@{[ $i % 5 ]}","pad":"$pad"}));
    req('POST', '/v1/acct/gw/openai/chat/completions',
        qq({"stream":true,"i":$i}), 'x-mock: sse=6;interval=0');
    req('POST', '/v1/acct/gw/compat/chat/completions',
        '{"model":"anthropic/claude","messages":[{"role":"user","content":"hi"}]}',
        'x-mock: fixture=anthropic/text.json');
    if ($i % 10 == 0) {
        req('GET', '/client/v4/accounts/acct/ai-gateway/gateways/gw/logs'
                   . '?per_page=50&filters=%5B%7B%22key%22%3A%22model%22%2C'
                   . '%22operator%22%3A%22eq%22%2C%22value%22%3A%5B%22m1%22%5D%7D%5D');
        req('GET', '/client/v4/accounts/acct/ai-gateway/gateways/gw/logs'
                   . '?per_page=20&order_by=model&page=2');
    }
}

add_block_preprocessor(sub {
    my $block = shift;

    my $store = $block->store;

    $block->set_value("config", <<END);
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        $store
        ai_gateway_logs_max 200;
        ai_gateway_logs_strategy delete_oldest;
        ai_gateway_log_payload_size 4k;
    }
    location /client/v4/ {
        ai_gateway_api;
    }
END

    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");
    $block->set_value("timeout", 300);
    $block->set_value("no_error_log", "[error]\n[alert]\n[crit]\n");
});

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    my $n = $block->name;

    if ($ENV{TEST_NGINX_USE_VALGRIND}) {
        pass("$n - skipped under valgrind");
        return;
    }

    my $rounds = $ENV{TEST_AIGW_ROUNDS} || 1500;
    my $t0 = time;
    one_round($_) for 1 .. $rounds / 5;
    my $warm = rss_kb();
    one_round($_) for $rounds / 5 + 1 .. $rounds;
    my $end = rss_kb();
    diag("$n: $rounds rounds in " . int(time - $t0) . " s");

    my $j = JSON::PP->new->decode($HT->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/client/v4/accounts/acct/ai-gateway/gateways/gw/logs")->{content});
    is($j->{result_info}{total_count}, 200, "$n - the store is full");

    my $reqs = int($rounds * 3.2);
    diag("$n: worker RSS $warm kB after " . int($reqs / 5) . " requests, "
         . "$end kB after $reqs (+" . ($end - $warm) . " kB)");
    ok($warm > 0, "$n - measured");
    cmp_ok($end - $warm, '<', 1024,
           "$n - flat: less than 1 MB more after the warm-up");
});

run_tests();

__DATA__

=== TEST 1: shared memory store, full
--- http_config
ai_gateway_log_zone logs:16m;
--- store
ai_gateway_logs logs;



=== TEST 2: Redis store, full
--- store
ai_gateway_logs_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t114:;
