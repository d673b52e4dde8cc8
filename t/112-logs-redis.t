# Copyright (C) ngx_ai_gateway contributors

# Request logs in Redis (ai_gateway_logs_redis): a real redis-server
# started here; records written by one node and read through the Logs API
# of another, the layout in Redis, both strategies when full, pages and
# filters across batches, PATCH and DELETE; Redis stopped, hanging or
# holding foreign bytes: requests are served, the records lost are
# counted and logged at a bounded rate, the API answers 503.

use lib 't/lib';
use AIGW::Test;
use AIGW::Redis;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use IO::Socket::INET ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
our $J = JSON::PP->new->utf8->canonical;

our ($REDIS_PID, $HANG_PID);

BEGIN {
    $ENV{TEST_NGINX_REDIS_PORT} = redis_free_port();
    $ENV{TEST_NGINX_HANG_PORT} = redis_free_port();
    $ENV{TEST_NGINX_NODE2_PORT} = redis_free_port();
    $ENV{TEST_NGINX_HANG_SRV_PORT} = redis_free_port();
}

sub start_redis { $REDIS_PID = redis_start($ENV{TEST_NGINX_REDIS_PORT}) }
sub stop_redis { redis_stop($REDIS_PID); undef $REDIS_PID }

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

start_redis();
$HANG_PID = hang_peer($ENV{TEST_NGINX_HANG_PORT});

END {
    local $?;
    stop_redis();
    if ($HANG_PID) {
        kill 'KILL', $HANG_PID;
        waitpid $HANG_PID, 0;
    }
}

sub rc { redis_cmd({ port => $ENV{TEST_NGINX_REDIS_PORT} }, @_) }

sub gw {
    my ($path, $body, %h) = @_;
    my $port = $ENV{TEST_NGINX_SERVER_PORT};
    $port = $ENV{"TEST_NGINX_$1_PORT"} if $path =~ s{^/(NODE2|HANG_SRV)}{};
    return $HT->request('POST', "http://127.0.0.1:$port$path",
                        { headers => { 'content-type' => 'application/json',
                                       %h },
                          content => $body });
}

sub uri {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub api {
    my ($method, $path, $arg, $srv) = @_;
    my $port = $srv ? $ENV{"TEST_NGINX_${srv}_PORT"}
                    : $ENV{TEST_NGINX_SERVER_PORT};
    my $url = "http://127.0.0.1:$port"
            . "/client/v4/accounts/acct/ai-gateway/gateways/gw/logs$path";
    my $content;
    if ($method eq 'PATCH') {
        $content = $J->encode($arg);
    } elsif (defined $arg) {
        $url .= "?$arg";
    }
    my $r = $HT->request($method, $url, {
        $content ? (headers => { 'content-type' => 'application/json' },
                    content => $content) : () });
    my $j = eval { $J->decode($r->{content}) };
    return wantarray ? ($j, $r) : $j;
}

sub logs { my $j = api('GET', '', @_); return $j ? $j->{result} : undef }

sub error_lines {
    my $re = shift;
    open my $f, '<', "$ENV{TEST_NGINX_LOG_DIR}/error.log" or return 0;
    my $n = grep { /$re/ } <$f>;
    close $f;
    return $n;
}

my $chat = "/v1/acct/gw/openai/chat/completions";

add_block_preprocessor(sub {
    my $block = shift;

    my $extra = $block->gateway // '';

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT prefix=t112: timeout=300ms;
        $extra
    }
    location /client/v4/ {
        ai_gateway_api;
    }
END

    $block->set_value("http_config", <<END) unless defined $block->http_config;
    server {
        listen 127.0.0.1:\$TEST_NGINX_NODE2_PORT;
        location /v1/ {
            ai_gateway gw account=acct;
            ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
            ai_gateway_logs_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT prefix=t112: timeout=300ms;
            $extra
        }
        location /client/v4/ {
            ai_gateway_api;
        }
    }
    server {
        listen 127.0.0.1:\$TEST_NGINX_HANG_SRV_PORT;
        location /v1/ {
            ai_gateway hanging account=acct;
            ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
            ai_gateway_logs_redis 127.0.0.1:\$TEST_NGINX_HANG_PORT timeout=200ms;
        }
        location /client/v4/ {
            ai_gateway_api;
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
            rc('FLUSHALL') if $REDIS_PID;
            $scenario{$k}->($name);
        }
    }
});

$scenario{'records in Redis'} = sub {
    my $n = shift;
    my $b = '{"model":"gpt-4o","x":1}';
    my $r = gw($chat, $b, authorization => 'Bearer sk-redis-secret');
    is($r->{status}, 200, "$n - 200");
    my $id = $r->{headers}{'cf-aig-log-id'};
    my $l = logs();
    is(scalar @$l, 1, "$n - one record");
    is($l->[0]{id}, $id, "$n - its id");
    is($l->[0]{model}, 'gpt-4o', "$n - its model");
    my $g = api('GET', "/$id")->{result};
    like($g->{request_head}, qr/authorization: \[REDACTED\]/i, "$n - head");
    my (undef, $q) = api('GET', "/$id/request");
    is($q->{content}, $b, "$n - the request payload");
    my (undef, $p) = api('GET', "/$id/response");
    like($p->{content}, qr/"path":"\/v1\/chat\/completions"/,
         "$n - the response payload");
    unlike($p->{content}, qr/sk-redis-secret/, "$n - scrubbed");

    # the layout: an index, a hash per record

    is(rc('ZCARD', 't112:{gw}:i'), 1, "$n - one member in the index");
    my $m = rc('ZRANGE', 't112:{gw}:i', 0, -1)->[0];
    like($m, qr/^\d{16}:\Q$id\E$/, "$n - created_at:id");
    my $h = rc('HGETALL', "t112:{gw}:r:$id");
    my %h = @$h;
    like($h{r}, qr/^AGL1/, "$n - the record's bytes");
    is($h{q}, $b, "$n - the request payload");
    ok(length $h{a}, "$n - the response payload");
    my $all = join '', map { ref $_ ? '' : $_ } @{ rc('KEYS', '*') };
    unlike(join(' ', map { rc('DUMP', $_) // '' } @{ rc('KEYS', '*') }),
           qr/sk-redis-secret/, "$n - no credential in Redis");

    # PATCH, in fields of their own

    my ($j, $pr) = api('PATCH', "/$id", { feedback => 1, score => 77,
                                          metadata => { u => 'x' } });
    is($pr->{status}, 200, "$n - PATCH");
    is(rc('HGET', "t112:{gw}:r:$id", 'f'), '1', "$n - feedback field");
    is(rc('HGET', "t112:{gw}:r:$id", 'c'), '77', "$n - score field");
    $g = api('GET', "/$id")->{result};
    is($g->{feedback}, 1, "$n - feedback read back");
    is($g->{score}, 77, "$n - score");
    is_deeply($g->{metadata}, { u => 'x' }, "$n - metadata");
    is(scalar @{ logs(filt('feedback', 'eq', 1)) }, 1, "$n - filtered on it");
    ($j, $pr) = api('PATCH', '/01ARZ3NDEKTSV4RRFFQ69G5FAV', { feedback => 1 });
    is($pr->{status}, 404, "$n - PATCH of an unknown log");
    ($j, $pr) = api('GET', '/01ARZ3NDEKTSV4RRFFQ69G5FAV');
    is($pr->{status}, 404, "$n - GET of an unknown log");

    ($j) = api('DELETE', '');
    is($j->{result}{deleted}, 1, "$n - DELETE");
    is(rc('ZCARD', 't112:{gw}:i'), 0, "$n - the index empty");
    is(rc('EXISTS', "t112:{gw}:r:$id"), 0, "$n - the record gone");
};

sub filt {
    my ($key, $op, @v) = @_;
    return 'per_page=50&filters=' . uri($J->encode([
        { key => $key, operator => $op, value => \@v } ]));
}

$scenario{'two nodes'} = sub {
    my $n = shift;
    my $r1 = gw($chat, '{"node":1}');
    my $r2 = gw("/NODE2$chat", '{"node":2}');
    sleep 0.2;    # node 2's write is not waited for
    my $l = logs();
    is(scalar @$l, 2, "$n - node 1 lists both");
    my %ids = map { $_->{id} => 1 } @$l;
    ok($ids{ $r1->{headers}{'cf-aig-log-id'} }
       && $ids{ $r2->{headers}{'cf-aig-log-id'} }, "$n - each node's");
    is(scalar @{ api('GET', '', undef, 'NODE2')->{result} }, 2,
       "$n - and node 2 too");
    api('DELETE', '', undef, 'NODE2');
    is(scalar @{ logs() }, 0, "$n - a delete seen by both");
};

$scenario{'full, stop_inserting'} = sub {
    my $n = shift;
    my @ids = map { gw($chat, qq({"n":$_}))->{headers}{'cf-aig-log-id'} }
              1 .. 5;
    my $l = logs();
    is(scalar @$l, 3, "$n - three at most");
    is_deeply([ sort map { $_->{id} } @$l ], [ sort @ids[0 .. 2] ],
              "$n - the first three");
    sleep 0.2;
    is(error_lines(qr/log records of gateway "gw" lost: the gateway has its ai_gateway_logs_max records, stop_inserting/),
       1, "$n - said once, not per record");
};

$scenario{'full, delete_oldest'} = sub {
    my $n = shift;
    my @ids = map { gw($chat, qq({"n":$_}))->{headers}{'cf-aig-log-id'} }
              1 .. 5;
    my $l = logs();
    is(scalar @$l, 3, "$n - three at most");
    is_deeply([ sort map { $_->{id} } @$l ], [ sort @ids[2 .. 4] ],
              "$n - the last three");
    is(rc('ZCARD', 't112:{gw}:i'), 3, "$n - three members");
    is(scalar grep({ /^t112:\{gw\}:r:/ } @{ rc('KEYS', '*') }), 3,
       "$n - three hashes: the oldest deleted with their members");
};

$scenario{'pages across batches'} = sub {
    my $n = shift;
    for my $i (1 .. 600) {
        gw($chat, qq({"model":"m@{[ $i % 6 ]}","i":$i}));
    }
    my $j = api('GET', '', 'per_page=50');
    is($j->{result_info}{total_count}, 600, "$n - all of them");
    $j = api('GET', '', filt('model', 'eq', 'm2') . '&page=2');
    is($j->{result_info}{total_count}, 100, "$n - filtered, across batches");
    is($j->{result_info}{count}, 50, "$n - page 2 of them");
    # created_at (the request's start), then the id (made later)
    my @seen;
    for my $p (1 .. 12) {
        push @seen, map { "$_->{created_at} $_->{id}" }
                    @{ api('GET', '', "per_page=50&page=$p")->{result} };
    }
    my %u = map { $_ => 1 } @seen;
    is(scalar keys %u, 600, "$n - pages neither skip nor repeat");
    is_deeply(\@seen, [ reverse sort @seen ], "$n - newest first");
    $j = api('GET', '', 'order_by=model&order_by_direction=desc&per_page=50&page=2');
    is($j->{result}[0]{model}, 'm5', "$n - another order");
    ($j) = api('DELETE', '', filt('model', 'eq', 'm0'));
    is($j->{result}{deleted}, 100, "$n - a delete across batches");
    is(rc('ZCARD', 't112:{gw}:i'), 500, "$n - the rest kept");
};

$scenario{'foreign bytes'} = sub {
    my $n = shift;
    my $id = gw($chat, '{"ok":1}')->{headers}{'cf-aig-log-id'};
    for (1 .. 50) {                 # the write is not waited for
        last if rc('HEXISTS', "t112:{gw}:r:$id", 'r');
        sleep 0.05;
    }
    rc('ZADD', 't112:{gw}:i', 0, '0000000000000001:01ARZ3NDEKTSV4RRFFQ69G5FAV');
    rc('HSET', 't112:{gw}:r:01ARZ3NDEKTSV4RRFFQ69G5FAV', 'r', "AGL1\x00\xff garbage");
    rc('ZADD', 't112:{gw}:i', 0, '0000000000000002:01BX5ZZKBKACTAV9WEVGEMMVRZ');
    rc('ZADD', 't112:{gw}:i', 0, 'not a member');
    rc('HSET', "t112:{gw}:r:$id", 'c', '1000');
    my ($j, $r) = api('GET', '', 'per_page=50');
    is($r->{status}, 200, "$n - the list is served");
    is(scalar @{ $j->{result} }, 0,
       "$n - no record from foreign bytes (nor one with a bad score)");
    rc('HDEL', "t112:{gw}:r:$id", 'c');
    ($j, $r) = api('GET', '', 'per_page=50');
    is(scalar @{ $j->{result} }, 1, "$n - the good one");
    ($j, $r) = api('GET', '/01ARZ3NDEKTSV4RRFFQ69G5FAV');
    is($r->{status}, 404, "$n - a foreign record: 404");
};

$scenario{'Redis stopped'} = sub {
    my $n = shift;
    gw($chat, '{"before":1}');
    is(scalar @{ logs() }, 1, "$n - a record while Redis runs");
    stop_redis();
    for my $i (1 .. 20) {
        my $t0 = time;
        my $r = gw($chat, qq({"down":$i}));
        is($r->{status}, 200, "$n - request $i served") if $i <= 3;
        cmp_ok(time - $t0, '<', 1, "$n - without waiting") if $i <= 3;
    }
    my ($j, $r) = api('GET', '');
    is($r->{status}, 503, "$n - the API: 503");
    is($j->{errors}[0]{code}, 7010, "$n - code 7010");
    is(error_lines(qr/log records of gateway "gw" lost/), 1,
       "$n - the loss said once in the interval");
    start_redis();
    sleep 1.2;
    gw($chat, '{"after":1}');
    sleep 0.1;
    is(scalar @{ logs() }, 1, "$n - Redis back: records again");
};

$scenario{'Redis hangs'} = sub {
    my $n = shift;
    for my $i (1 .. 3) {
        my $t0 = time;
        my $r = gw("/HANG_SRV/v1/acct/hanging/openai/chat/completions",
                   '{"hang":1}');
        my $dt = time - $t0;
        is($r->{status}, 200, "$n - request $i served");
        cmp_ok($dt, '<', $ENV{TEST_NGINX_USE_VALGRIND} ? 2 : 0.15,
               "$n - the write does not wait ($dt s)");
    }
    my $port = $ENV{TEST_NGINX_HANG_SRV_PORT};
    my $t0 = time;
    my $r = $HT->get("http://127.0.0.1:$port/client/v4/accounts/acct/ai-gateway/gateways/hanging/logs");
    is($r->{status}, 503, "$n - the API: 503");
    cmp_ok(time - $t0, '<', 1, "$n - after the timeout");
    sleep 0.4;
};

run_tests();

__DATA__

=== TEST 1: records in Redis
--- gateway
ai_gateway_log_payload on;
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: two nodes
--- no_error_log
[error]



=== TEST 3: full, stop_inserting
--- gateway
ai_gateway_logs_max 3;
--- error_log
stop_inserting



=== TEST 4: full, delete_oldest
--- gateway
ai_gateway_logs_max 3;
ai_gateway_logs_strategy delete_oldest;
--- no_error_log
[error]



=== TEST 5: pages across batches
--- no_error_log
[error]



=== TEST 6: foreign bytes
--- no_error_log
[error]
[alert]
[crit]



=== TEST 7: Redis stopped
--- error_log
log records of gateway "gw" lost



=== TEST 8: Redis hangs
--- error_log
log records of gateway "hanging" lost
