# Copyright (C) ngx_ai_gateway contributors

# The response cache, Redis store: a real redis-server started here, two
# "nodes" (two locations, each with its own connection) sharing entries,
# SET ... PX, the key prefix, Redis stopped mid-run, and fake Redis peers
# that hang or answer garbage: the cache fails open.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "listen: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

our ($REDIS_PID, $HANG_PID, $GARBAGE_PID);

sub start_redis {
    my $port = $ENV{TEST_NGINX_REDIS_PORT};
    $REDIS_PID = fork // die "fork: $!";
    if ($REDIS_PID == 0) {
        open STDOUT, '>', '/dev/null';
        { exec 'redis-server', '--port', $port, '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--daemonize', 'no' };
        POSIX::_exit(127);
    }
    for (1 .. 50) {
        last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        sleep 0.1;
    }
}

sub stop_redis {
    return unless $REDIS_PID;
    kill 'TERM', $REDIS_PID;
    waitpid $REDIS_PID, 0;
    undef $REDIS_PID;
}

# a peer that accepts and then never answers, or answers garbage

sub fake_peer {
    my ($port, $garbage) = @_;
    my $l = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                  LocalPort => $port, ReuseAddr => 1)
        or die "fake redis: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my @keep;
        while (my $c = $l->accept) {
            if ($garbage) {
                my $buf;
                sysread($c, $buf, 65536);
                syswrite($c, "\$5\r\nab\x00\xff\r\n*x\r\n" . ("\xfe" x 64));
            }
            push @keep, $c;
        }
        POSIX::_exit(0);
    }
    close $l;
    return $pid;
}

BEGIN {
    $ENV{TEST_NGINX_REDIS_PORT} = free_port();
    $ENV{TEST_NGINX_HANG_PORT} = free_port();
    $ENV{TEST_NGINX_GARBAGE_PORT} = free_port();
    $ENV{TEST_NGINX_NODE2_PORT} = free_port();
    $ENV{TEST_NGINX_HANG_SRV_PORT} = free_port();
    $ENV{TEST_NGINX_GARBAGE_SRV_PORT} = free_port();
}

start_redis();
$HANG_PID = fake_peer($ENV{TEST_NGINX_HANG_PORT}, 0);
$GARBAGE_PID = fake_peer($ENV{TEST_NGINX_GARBAGE_PORT}, 1);

END {
    local $?;
    stop_redis();
    for ($HANG_PID, $GARBAGE_PID) {
        next unless $_;
        kill 'KILL', $_;
        waitpid $_, 0;
    }
}

sub redis_cli { my $p = $ENV{TEST_NGINX_REDIS_PORT}; `redis-cli -p $p @_` }

sub gw {
    my ($path, $body, %h) = @_;
    my $port = $ENV{TEST_NGINX_SERVER_PORT};
    $port = $ENV{"TEST_NGINX_$1_PORT"} if $path =~ s{^/(NODE2|HANG_SRV|GARBAGE_SRV)}{};
    return $HT->request('POST',
        "http://127.0.0.1:$port$path",
        { headers => { 'content-type' => 'application/json', %h },
          content => $body });
}

sub status_of { $_[0]{headers}{'cf-aig-cache-status'} // '' }

sub upstream_count { scalar @{ mock_log()->{requests} } }

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("config", <<'END') unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t081: timeout=300ms;
        ai_gateway_cache_ttl 90;
    }
END

    # the other "nodes", without rewrite (whose regex valgrind reports)

    $block->set_value("http_config", <<'END') unless defined $block->http_config;
    server {
        listen 127.0.0.1:$TEST_NGINX_NODE2_PORT;
        location /v1/ {
            ai_gateway gw;
            ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t081: timeout=300ms;
            ai_gateway_cache_ttl 90;
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_HANG_SRV_PORT;
        location /v1/ {
            ai_gateway gw;
            ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_HANG_PORT timeout=200ms;
            ai_gateway_cache_ttl 90;
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_GARBAGE_SRV_PORT;
        location /v1/ {
            ai_gateway gw;
            ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_GARBAGE_PORT timeout=200ms;
            ai_gateway_cache_ttl 90;
        }
    }
END

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
            $scenario{$k}->($name);
        }
    }
});

my $chat = "/v1/acct/gw/openai/chat/completions";

$scenario{'two nodes'} = sub {
    my $n = shift;
    my $b = '{"redis":' . int(rand(1e9)) . '}';
    my $r1 = gw($chat, $b);
    my $r2 = gw("/NODE2$chat", $b);
    my $r3 = gw($chat, $b);
    is($r1->{status}, 200, "$n - 200");
    is(status_of($r1), 'MISS', "$n - node 1 MISS");
    is(status_of($r2), 'HIT', "$n - node 2 sees node 1's entry");
    is($r2->{content}, $r1->{content}, "$n - same answer");
    is(status_of($r3), 'HIT', "$n - node 1 HIT");
    is(upstream_count(), 1, "$n - one upstream request");

    my @keys = grep { length } split /\n/, redis_cli('--scan --pattern "t081:*"');
    ok(scalar(grep { /^t081:[0-9a-f]{64}$/ } @keys), "$n - prefixed keys");
    my ($k) = @keys;
    my $pttl = redis_cli("PTTL '$k'");
    cmp_ok($pttl, '>', 80000, "$n - stored with PX (ttl $pttl)");
    cmp_ok($pttl, '<=', 90000, "$n - of the gateway's TTL");

    my $sb = '{"stream":true,"redis":' . int(rand(1e9)) . '}';
    my $s1 = gw($chat, $sb, 'x-mock' => 'sse=4;interval=10');
    my $s2 = gw("/NODE2$chat", $sb, 'x-mock' => 'sse=4;interval=10');
    is(status_of($s2), 'HIT', "$n - streams shared too");
    is($s2->{content}, $s1->{content}, "$n - same events");
    like($s2->{headers}{'content-type'}, qr{text/event-stream},
         "$n - replayed as SSE");

    my $big = '{"big":' . int(rand(1e9)) . '}';
    my $g1 = gw($chat, $big, 'x-mock' => 'size=300000');
    sleep 0.3;    # node 1's SET is not waited for
    my $g2 = gw("/NODE2$chat", $big, 'x-mock' => 'size=300000');
    is(status_of($g2), 'HIT', "$n - a large entry (many reads)");
    is($g2->{content}, $g1->{content}, "$n - whole");
};

$scenario{'Redis stopped'} = sub {
    my $n = shift;
    my $b = '{"down":' . int(rand(1e9)) . '}';
    gw($chat, $b);
    is(status_of(gw($chat, $b)), 'HIT', "$n - HIT while Redis runs");
    stop_redis();
    for my $i (1 .. 3) {
        my $t0 = time;
        my $r = gw($chat, $b);
        is($r->{status}, 200, "$n - request $i succeeds");
        is(status_of($r), 'MISS', "$n - as a MISS");
        cmp_ok(time - $t0, '<', 1, "$n - without waiting long");
    }
    start_redis();
    sleep 1.2;
    my $b2 = '{"up":' . int(rand(1e9)) . '}';
    gw($chat, $b2);
    my $r = gw($chat, $b2);
    is(status_of($r), 'HIT', "$n - Redis back: reconnected");
};

$scenario{'hangs'} = sub {
    my $n = shift;
    for my $i (1 .. 3) {
        my $t0 = time;
        my $r = gw("/HANG_SRV$chat", '{"hang":1}');
        my $dt = time - $t0;
        is($r->{status}, 200, "$n - request $i answered");
        is(status_of($r), 'MISS', "$n - as a MISS");
        cmp_ok($dt, '<', 0.9, "$n - within the Redis timeout ($dt s)");
    }
    is(upstream_count(), 3, "$n - each went upstream");
};

$scenario{'garbage'} = sub {
    my $n = shift;
    for my $i (1 .. 3) {
        my $r = gw("/GARBAGE_SRV$chat", '{"garbage":1}');
        is($r->{status}, 200, "$n - request $i answered");
        is(status_of($r), 'MISS', "$n - as a MISS");
    }
};

run_tests();

__DATA__

=== TEST 1: two nodes share one Redis
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: Redis stopped mid-run: MISS within the timeout
--- error_log
ai_gateway: Redis



=== TEST 3: a fake Redis that hangs: fail open
--- error_log
timed out



=== TEST 4: a fake Redis that answers garbage: fail open
--- error_log
ai_gateway: Redis
