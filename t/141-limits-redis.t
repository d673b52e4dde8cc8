# Copyright (C) ngx_ai_gateway contributors

# Rate limits in Redis (redis=): a real redis-server started here, and two
# nginx instances (the test's, and a second one started by this file with
# the same module) sharing one limit under many concurrent clients; the
# windows with the test's clock; token limits; counters that expire; Redis
# stopped and restarted under load, and a Redis that hangs, with each
# failure policy (fail=allow, fail=refuse).

BEGIN { $ENV{AI_GATEWAY_TEST_CLOCK} = 1 }

use lib 't/lib';
use AIGW::Test;
use AIGW::Redis;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use IO::Socket::INET ();
use IO::Select ();
use File::Temp ();
use POSIX ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();
master_on();
workers(2);

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

BEGIN {
    $ENV{TEST_NGINX_REDIS_PORT} = redis_free_port();
    $ENV{TEST_NGINX_HANG_PORT} = redis_free_port();
    $ENV{TEST_NGINX_NODE2_PORT} = redis_free_port();
}

our ($REDIS_PID, $HANG_PID, $NODE2_PID, $NODE2_DIR);

sub start_redis { $REDIS_PID = redis_start($ENV{TEST_NGINX_REDIS_PORT}) }
sub stop_redis { redis_stop($REDIS_PID); undef $REDIS_PID }
sub rcmd { redis_cmd({ port => $ENV{TEST_NGINX_REDIS_PORT} }, @_) }

# a peer that accepts and never answers

sub hang_peer {
    my $port = shift;
    my $l = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                  LocalPort => $port, ReuseAddr => 1)
        or die "hang peer: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my @keep;
        while (my $c = $l->accept) { push @keep, $c }
        POSIX::_exit(0);
    }
    close $l;
    return $pid;
}

# the second nginx instance: the same limit, its own workers and its own
# connection to Redis

sub start_node2 {
    my $limit = shift;
    $NODE2_DIR = File::Temp::tempdir(CLEANUP => 1);
    mkdir "$NODE2_DIR/logs";
    my $port = $ENV{TEST_NGINX_NODE2_PORT};
    open my $fh, '>', "$NODE2_DIR/nginx.conf" or die "$!";
    print $fh <<END;
load_module $ENV{TEST_NGINX_LOAD_MODULES};
worker_processes 2;
daemon off;
pid $NODE2_DIR/nginx.pid;
error_log $NODE2_DIR/logs/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    ai_gateway_redis r 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT} timeout=3s;
    server {
        listen 127.0.0.1:$port;
        location /v1/ {
            ai_gateway gw;
            ai_gateway_provider openai http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT};
            $limit
        }
    }
}
END
    close $fh;
    $NODE2_PID = fork // die "fork: $!";
    if ($NODE2_PID == 0) {
        open STDERR, '>', "$NODE2_DIR/stderr";
        { exec $ENV{TEST_NGINX_BINARY}, '-p', "$NODE2_DIR/", '-c',
               "$NODE2_DIR/nginx.conf" };
        POSIX::_exit(127);
    }
    for (1 .. 50) {
        last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        sleep 0.1;
    }
}

sub stop_node2 {
    return unless $NODE2_PID;
    kill 'QUIT', $NODE2_PID;
    waitpid $NODE2_PID, 0;
    undef $NODE2_PID;
}

start_redis();
$HANG_PID = hang_peer($ENV{TEST_NGINX_HANG_PORT});

END {
    local $?;
    stop_node2();
    stop_redis();
    if ($HANG_PID) {
        kill 'KILL', $HANG_PID;
        waitpid $HANG_PID, 0;
    }
}

sub gw {
    my ($path, $body, %h) = @_;
    my $port = $ENV{TEST_NGINX_SERVER_PORT};
    $port = $ENV{"TEST_NGINX_$1_PORT"} if $path =~ s{^/(NODE2)}{};
    return $HT->request('POST', "http://127.0.0.1:$port$path",
        { headers => { 'content-type' => 'application/json', %h },
          content => $body });
}

sub chat { "/v1/acct/gw/openai/chat/completions" }

# many($n, [ports]): n clients at once, each on the next port in turn; the
# statuses of the answers

sub many {
    my ($n, @ports) = @_;
    my $body = '{"x":1}';
    my $req = "POST " . chat() . " HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\nContent-Type: application/json\r\n"
            . "Content-Length: " . length($body) . "\r\n\r\n$body";
    my @s = map {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => $ports[$_ % @ports])
            or die "connect: $!"
    } 0 .. $n - 1;
    syswrite($_, $req) for @s;
    my @st;
    for my $s (@s) {
        local $/;
        my $d = <$s> // '';
        push @st, $d =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
        close $s;
    }
    return @st;
}

sub count { my ($v, @a) = @_; scalar grep { $_ == $v } @a }

my $NOON = 1_700_000_000 - 1_700_000_000 % 86400 + 12 * 3600;
sub at { my ($h, $m, $s) = @_; $NOON + ($h - 12) * 3600 + $m * 60 + ($s // 0) }

my $runs = 0;

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
        "ai_gateway_redis r 127.0.0.1:\$TEST_NGINX_REDIS_PORT timeout=3s;\n"
        . "ai_gateway_redis hang 127.0.0.1:\$TEST_NGINX_HANG_PORT "
        . "timeout=200ms;\n" . ($block->http_config // ''));

    unless (defined $block->request) {
        $block->set_value("request", "GET /ping");
        $block->set_value("response_body", "ok");
    }

    if (!defined $block->no_error_log && !defined $block->error_log) {
        $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
    }
});

my %scenario;

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    my $name = $block->name;
    for my $k (sort keys %scenario) {
        if ($name =~ /\Q$k\E/) {
            mock_reset();
            rcmd('FLUSHALL');
            $scenario{$k}->($name);
        }
    }
});

# two nginx instances, 2 workers each, one limit in Redis: 60 clients at
# once, alternating between the nodes; the script counts atomically, so
# exactly the limit passes (the documented bound of the overshoot is 0
# while Redis answers in time: a command that times out is let through by
# fail=allow, hence the long timeout here, valgrind being slow)

for my $tech (qw(fixed sliding)) {
    $scenario{"two nodes $tech"} = sub {
        my $n = shift;
        start_node2("ai_gateway_limit redis=r requests=20 interval=1h "
                    . "technique=$tech;");
        my @st = many(60, $ENV{TEST_NGINX_SERVER_PORT},
                      $ENV{TEST_NGINX_NODE2_PORT});
        stop_node2();
        is(count(200, @st), 20, "$n - exactly 20 of 60 pass");
        is(count(429, @st), 40, "$n - 40 refused");
        is(scalar @{ mock_log()->{requests} }, 20,
           "$n - 20 reach the provider");
        my @keys = @{ rcmd('KEYS', 'aigw:limit:*') };
        ok(@keys >= 1, "$n - the counts are in Redis");
        for my $k (@keys) {
            my $ttl = rcmd('PTTL', $k);
            ok($ttl > 0 && $ttl <= 2 * 3600 * 1000,
               "$n - $k expires ($ttl ms)");
        }
    };
}

$scenario{'fixed and sliding'} = sub {
    my $n = shift;
    my (%ok, %refused);
    for my $g (qw(fixed sliding)) {
        for my $t (at(12, 9), at(12, 11)) {
            for (1 .. 10) {
                my $r = gw("/v1/acct/$g/openai/chat/completions", '{"x":1}',
                           'x-now' => $t);
                $r->{status} == 200 ? $ok{$g}++ : $refused{$g}++;
            }
        }
    }
    is($ok{fixed}, 20, "$n - fixed: all 20 pass");
    is($ok{sliding}, 10, "$n - sliding: the ten at 12:09 pass");
    is($refused{sliding}, 10, "$n - sliding: the ten at 12:11 are refused");
    my $r = gw("/v1/acct/sliding/openai/chat/completions", '{"x":1}',
               'x-now' => at(12, 18, 59));
    is($r->{status}, 429, "$n - sliding: still full at 12:18:59");
    $r = gw("/v1/acct/sliding/openai/chat/completions", '{"x":1}',
            'x-now' => at(12, 19, 0));
    is($r->{status}, 200, "$n - sliding: a place at 12:19:00");
};

$scenario{'tokens'} = sub {
    my $n = shift;
    my $f = 'fixture=openai-chat/text.json';    # 16 in, 363 out
    my @s;
    for (1 .. 4) {
        push @s, gw(chat(), '{"t":1}', 'x-mock' => $f)->{status};
        sleep 0.3;    # charged in the log phase, after the answer
    }
    is("@s", "200 200 200 429", "$n - 800 tokens: refused after 1137");
};

# Redis stopped under load, then started again: fail=allow lets requests
# pass unlimited, fail=refuse refuses them; the error log says so

for my $policy (qw(allow refuse)) {
    $scenario{"Redis stopped, fail=$policy"} = sub {
        my $n = shift;
        my @st = map { gw(chat(), '{"s":1}')->{status} } 1 .. 3;
        is("@st", "200 200 429", "$n - limited while Redis runs");
        stop_redis();
        my $t0 = time;
        @st = many(20, $ENV{TEST_NGINX_SERVER_PORT});
        my $want = $policy eq 'allow' ? 200 : 429;
        is(count($want, @st), 20, "$n - all $want while Redis is down");
        ok(time - $t0 < 5, "$n - no request hangs");
        start_redis();
        sleep 1.2;    # redis.c tries a failed server again after 1 s
        @st = map { gw(chat(), '{"s":1}')->{status} } 1 .. 3;
        is("@st", "200 200 429",
           "$n - limited again once Redis is back (its counts were lost)");
        my $log = do {
            local (@ARGV, $/) = ("$ENV{TEST_NGINX_SERVER_ROOT}/logs/error.log");
            <>
        };
        my $says = $policy eq 'allow' ? 'allowed' : 'refused';
        my $k = () = $log =~ /limit "requests": Redis "r" at 127\.0\.0\.1:\d+ did not answer, requests are $says \(fail=$policy\)/g;
        ok($k >= 1 && $k <= 2,
           "$n - the error log says so, once per worker at most ($k)");
    };
}

$scenario{'Redis hangs'} = sub {
    my $n = shift;
    my $t0 = time;
    my $r = gw('/v1/acct/hang/openai/chat/completions', '{"h":1}');
    is($r->{status}, 200, "$n - fail=allow: the request passes");
    ok(time - $t0 < 2, "$n - after the 200ms timeout");
    $r = gw('/v1/acct/hangr/openai/chat/completions', '{"h":1}');
    is($r->{status}, 429, "$n - fail=refuse: refused");
};

# a client that leaves while its request waits for Redis: the wait is
# cancelled (its timer too), the worker goes on

$scenario{'client leaves'} = sub {
    my $n = shift;
    my $body = '{"c":1}';
    for (1 .. 3) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
            or die "connect: $!";
        syswrite($s, "POST /v1/acct/hang/openai/chat/completions HTTP/1.1\r\n"
                   . "Host: localhost\r\nContent-Type: application/json\r\n"
                   . "Content-Length: " . length($body) . "\r\n\r\n$body");
        sleep 0.05;
        close $s;
    }
    sleep($ENV{TEST_NGINX_USE_VALGRIND} ? 1.5 : 0.5);    # past the timeout
    is(scalar @{ mock_log()->{requests} }, 0,
       "$n - no request went on after its client left");
    my $r = gw('/v1/acct/gw/openai/chat/completions', '{"c":2}');
    is($r->{status}, 200, "$n - the worker serves the next request");
};

run_tests();

__DATA__

=== TEST 1: two nodes fixed
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=r requests=20 interval=1h technique=fixed;
}



=== TEST 2: two nodes sliding
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=r requests=20 interval=1h technique=sliding;
}



=== TEST 3: fixed and sliding
--- config
location = /ping { return 200 ok; }
location /v1/acct/fixed/ {
    ai_gateway fixed;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=r requests=10 interval=10m technique=fixed;
    ai_gateway_limit_clock $http_x_now;
}
location /v1/acct/sliding/ {
    ai_gateway sliding;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=r requests=10 interval=10m technique=sliding;
    ai_gateway_limit_clock $http_x_now;
}



=== TEST 4: tokens
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=r tokens=800 interval=1h;
}



=== TEST 5: Redis stopped, fail=allow
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=r requests=2 interval=1h fail=allow;
}



=== TEST 6: Redis stopped, fail=refuse
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=r requests=2 interval=1h fail=refuse;
}



=== TEST 7: Redis hangs
--- config
location = /ping { return 200 ok; }
location /v1/acct/hang/ {
    ai_gateway hang;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=hang requests=2 interval=1h;
}
location /v1/acct/hangr/ {
    ai_gateway hangr;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=hang requests=2 interval=1h fail=refuse;
}



=== TEST 8: client leaves
--- config
location = /ping { return 200 ok; }
location /v1/acct/hang/ {
    ai_gateway hang;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=hang requests=2 interval=1h;
}
location /v1/acct/gw/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
}



=== TEST 9: a limit names a Redis server never declared
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_limit redis=nosuch requests=1 interval=1m;
}
--- must_die
--- error_log
no "ai_gateway_redis nosuch" is declared
