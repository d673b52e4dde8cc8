# Copyright (C) ngx_ai_gateway contributors

# The response cache, entries read back from Redis are untrusted: a real
# redis-server started here, a real entry stored by the gateway, then
# replaced through a raw Redis client by a crafted one (a wrapping length,
# truncated, a CRLF in a header value, bad header names, bad statuses,
# garbage, bytes after the body).  Each must be a MISS answered by the
# provider, be deleted from Redis, be logged once (by its key, never its
# content), and leave the worker alive.
#
# The crafted entries follow the layout of the entry the gateway itself
# stored (read back first), so that they reach the same decoder checks
# whatever the format version.

use lib 't/lib';
use AIGW::Test;
use AIGW::Redis;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);

our $REDIS_PID;

BEGIN {
    $ENV{TEST_NGINX_REDIS_PORT} = redis_free_port();
}

$REDIS_PID = redis_start($ENV{TEST_NGINX_REDIS_PORT});

END {
    local $?;
    redis_stop($REDIS_PID);
}

sub redis { redis_cmd({ port => $ENV{TEST_NGINX_REDIS_PORT} }, @_) }

sub gw {
    my ($body, %h) = @_;
    return $HT->request('POST',
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
        . "/v1/acct/gw/openai/chat/completions",
        { headers => { 'content-type' => 'application/json', %h },
          content => $body });
}

sub status_of { $_[0]{headers}{'cf-aig-cache-status'} // '' }

sub upstream_count { scalar @{ mock_log()->{requests} } }

sub error_log_text {
    open my $f, '<', $Test::Nginx::Util::ErrLogFile or return '';
    local $/;
    return scalar <$f>;
}

sub wait_for (&) {
    my $pred = shift;
    my $deadline = time + 5;
    while (time < $deadline) {
        return 1 if $pred->();
        sleep 0.05;
    }
    return 0;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("config", <<'END') unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t082: timeout=3s;
        ai_gateway_cache_ttl 90;
    }
END

    unless (defined $block->request) {
        $block->set_value("request", "GET /ping");
        $block->set_value("response_body", "ok");
    }

    $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\nsignal\n"
                                      . "exited on\n")
        unless defined $block->no_error_log;
});

my %scenario;

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    my $name = $block->name;
    for my $k (sort keys %scenario) {
        if ($name =~ /\Q$k\E/) {
            mock_reset();
            redis('FLUSHALL');
            $scenario{$k}->($name);
        }
    }
});


# A real entry: stored by the gateway for $body.  Returns its Redis key and
# whether it has the first format's layout (no body length).

our $V1;

sub real_entry {
    my ($n, $body) = @_;
    my $r = gw($body);
    is($r->{status}, 200, "$n - the first request is answered");
    is(status_of($r), 'MISS', "$n - as a MISS");
    my $keys;
    ok(wait_for { $keys = redis('KEYS', 't082:*'); @$keys == 1 },
       "$n - its entry is stored");
    my $key = $keys->[0];
    my $entry = redis('GET', $key);
    $V1 = substr($entry, 0, 4) eq 'AIG1';
    is(status_of(gw($body)), 'HIT', "$n - and found");
    return ($key, $entry, $r);
}

# an entry: status, [name, value] pairs, body; count and blen override the
# declared number of headers and body length

sub entry {
    my (%e) = @_;
    my $h = '';
    for (@{ $e{headers} // [] }) {
        $h .= pack('N', length $_->[0]) . $_->[0]
              . pack('N', length $_->[1]) . $_->[1];
    }
    my $n = $e{count} // scalar @{ $e{headers} // [] };
    my $s = ($V1 ? 'AIG1' : 'AIG2') . pack('NN', $e{status} // 200, $n) . $h;
    $s .= pack('Q>', $e{blen} // length $e{body}) unless $V1;
    return $s . $e{body};
}

my $CT = ['Content-Type', 'application/json'];

# The crafted entry replaces the real one; asked for, it is a MISS answered
# by the provider, deleted, and logged once.  Twice: with a provider error
# (not stored, so the key is gone afterwards), then with a good answer
# (stored in its place and found again).

sub check_bad {
    my ($n, $key, $body, $bad, @secrets) = @_;
    my ($hex) = $key =~ /^t082:([0-9a-f]{64})$/;
    my $logged = () = error_log_text() =~ /invalid cache entry \Q$hex\E/g;

    is(redis('SET', $key, $bad), 'OK', "$n - the crafted entry is put");

    my $count = upstream_count();
    my $r = gw($body, 'x-mock' => 'status=503');
    is($r->{status}, 503, "$n - answered by the provider");
    is(status_of($r), 'MISS', "$n - as a MISS");
    is(upstream_count(), $count + 1, "$n - one provider call");
    ok(!exists $r->{headers}{'set-cookie'}, "$n - no header injected");
    ok(wait_for { redis('EXISTS', $key) == 0 }, "$n - the entry is deleted");

    is(redis('SET', $key, $bad), 'OK', "$n - the crafted entry is put again");
    my $r2 = gw($body);
    is($r2->{status}, 200, "$n - a good answer");
    is(status_of($r2), 'MISS', "$n - a MISS again");
    is(upstream_count(), $count + 2, "$n - from the provider");
    ok(!exists $r2->{headers}{'set-cookie'}, "$n - no header injected");
    like($r2->{content}, qr/^\{/, "$n - the provider's body");

    ok(wait_for { my $v = redis('GET', $key); defined $v && $v ne $bad },
       "$n - the good answer replaced the crafted entry");
    my $r3 = gw($body);
    is(status_of($r3), 'HIT', "$n - and is found");
    is($r3->{content}, $r2->{content}, "$n - and served");

    my $log = error_log_text();
    my $now = () = $log =~ /invalid cache entry \Q$hex\E in Redis [^\n]*deleted/g;
    is($now - $logged, 2, "$n - logged once per entry");
    for my $s (@secrets) {
        unlike($log, qr/\Q$s\E/, "$n - the log has nothing of the entry");
    }
}


$scenario{'length that wraps'} = sub {
    my $n = shift;
    my $body = '{"t082":"wrap"}';
    my ($key) = real_entry($n, $body);
    my $m = $V1 ? 'AIG1' : 'AIG2';

    # a name length that wraps a 32-bit sum, then one that wraps a size_t
    # one; then the same for the value and the body lengths

    check_bad("$n (name 0xfffffffd)", $key, $body,
              $m . pack('NN', 200, 1) . pack('N', 0xfffffffd) . 'abcdefgh');
    check_bad("$n (name 0xffffffff)", $key, $body,
              $m . pack('NN', 200, 1) . pack('N', 0xffffffff) . 'a' x 64);
    check_bad("$n (value 0xfffffff8)", $key, $body,
              $m . pack('NN', 200, 1) . pack('N', 12) . 'x-request-id'
              . pack('N', 0xfffffff8) . 'abcdefgh');
    check_bad("$n (headers 0xffffffff)", $key, $body,
              $m . pack('NN', 200, 0xffffffff) . pack('N', 0) x 8);
    check_bad("$n (body length)", $key, $body,
              entry(headers => [$CT], body => '{}',
                    blen => ~0))
        unless $V1;
};

$scenario{'truncated'} = sub {
    my $n = shift;
    my $body = '{"t082":"truncated"}';
    my ($key, $real) = real_entry($n, $body);
    check_bad("$n (body)", $key, $body, substr($real, 0, -7));
    check_bad("$n (header)", $key, $body, substr($real, 0, 30));
    check_bad("$n (length)", $key, $body, substr($real, 0, 14));
};

$scenario{'CRLF'} = sub {
    my $n = shift;
    my $body = '{"t082":"crlf"}';
    my ($key) = real_entry($n, $body);
    for my $v ("req_1\r\nSet-Cookie: sid=evil", "req_1\nSet-Cookie: sid=evil",
               "req_1\rSet-Cookie: sid=evil", "req_1\x00sid=evil")
    {
        (my $what = $v) =~ s/([\r\n\x00])/sprintf '\\x%02x', ord $1/ge;
        check_bad("$n ($what)", $key, $body,
                  entry(headers => [$CT, ['x-request-id', $v]],
                        body => '{"injected":"body-secret"}'),
                  'sid=evil', 'body-secret');
    }
    check_bad("$n (Content-Type)", $key, $body,
              entry(headers => [['Content-Type',
                                 "text/html\r\nSet-Cookie: sid=evil"]],
                    body => '{"injected":"body-secret"}'),
              'sid=evil', 'body-secret');
};

$scenario{'bad header name'} = sub {
    my $n = shift;
    my $body = '{"t082":"name"}';
    my ($key) = real_entry($n, $body);
    for my $h ("x-request-id\r\nSet-Cookie", "Set-Cookie: sid", "bad name",
               "", "x-request-id:", "openai-\x7f",
               "Set-Cookie", "Location", "Content-Length",
               "Transfer-Encoding")
    {
        (my $what = $h) =~ s/([^\x21-\x7e])/sprintf '\\x%02x', ord $1/ge;
        check_bad("$n ($what)", $key, $body,
                  entry(headers => [$CT, [$h, 'sid=evil']],
                        body => '{"injected":"body-secret"}'),
                  'sid=evil', 'body-secret');
    }
};

$scenario{'bad status'} = sub {
    my $n = shift;
    my $body = '{"t082":"status"}';
    my ($key) = real_entry($n, $body);
    for my $s (0, 99, 199, 204, 300, 302, 404, 500, 600, 0x7fffffff,
               0xffffffff)
    {
        check_bad("$n ($s)", $key, $body,
                  entry(status => $s, headers => [$CT],
                        body => '{"injected":"body-secret"}'),
                  'body-secret');
    }
};

$scenario{'garbage'} = sub {
    my $n = shift;
    my $body = '{"t082":"garbage"}';
    my ($key) = real_entry($n, $body);
    srand(82);
    my $random = join '', map { chr int rand 256 } 1 .. 1000;
    for my $g ('', 'A', 'AIG1', 'AIG2', 'AIG9' . "\0" x 40, $random,
               "HTTP/1.1 200 OK\r\nSet-Cookie: sid=evil\r\n\r\n")
    {
        check_bad("$n (" . length($g) . " bytes)", $key, $body, $g);
    }
};

$scenario{'longer than declared'} = sub {
    my $n = shift;
    my $body = '{"t082":"longer"}';
    my ($key, $real) = real_entry($n, $body);
    check_bad("$n (bytes after the body)", $key, $body,
              $real . 'trailing-secret', 'trailing-secret');
    check_bad("$n (a header more than counted)", $key, $body,
              entry(count => 1,
                    headers => [$CT, ['x-request-id', 'req-secret']],
                    body => '{"a":1}'),
              'req-secret');
    check_bad("$n (a header less than counted)", $key, $body,
              entry(count => 3,
                    headers => [$CT, ['x-request-id', 'req-secret']],
                    body => '{"a":1}'),
              'req-secret');
};

$scenario{'a good crafted entry'} = sub {
    my $n = shift;
    my $body = '{"t082":"good"}';
    my ($key) = real_entry($n, $body);
    my $good = entry(headers => [$CT, ['x-request-id', 'req_crafted'],
                                 ['openai-processing-ms', '12']],
                     body => '{"crafted":true}');
    is(redis('SET', $key, $good), 'OK', "$n - put");
    my $count = upstream_count();
    my $r = gw($body);
    is($r->{status}, 200, "$n - 200");
    is(status_of($r), 'HIT', "$n - a HIT: the decoder takes what it writes");
    is($r->{headers}{'x-request-id'}, 'req_crafted', "$n - its headers");
    is($r->{headers}{'openai-processing-ms'}, '12', "$n - all of them");
    is($r->{content}, '{"crafted":true}', "$n - its body");
    is(upstream_count(), $count, "$n - no provider call");
};

run_tests();

__DATA__

=== TEST 1: a header length that wraps: a MISS, not a read past the entry
--- error_log
invalid cache entry



=== TEST 2: a truncated entry is a MISS, not half an answer
--- error_log
invalid cache entry



=== TEST 3: a CRLF in a header value: a MISS, no header injected
--- error_log
invalid cache entry



=== TEST 4: a bad header name, or one the cache does not keep: a MISS
--- error_log
invalid cache entry



=== TEST 5: a bad status is a MISS
--- error_log
invalid cache entry



=== TEST 6: garbage is a MISS
--- error_log
invalid cache entry



=== TEST 7: an entry longer than declared is a MISS
--- error_log
invalid cache entry



=== TEST 8: a good crafted entry is a HIT (the checks refuse only what they must)
--- no_error_log
invalid cache entry
[alert]
[crit]
signal
