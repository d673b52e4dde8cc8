# Copyright (C) ngx_ai_gateway contributors

# A provider body cut short (the provider closes its connection before the
# last chunk, or before its Content-Length) reaches the client as a cut in
# every mode: a direct request, retries, a request timeout, a Universal
# Endpoint step, the Unified API through an attempt.  The client's
# connection closes at once, without a terminating chunk or the rest of a
# Content-Length (no keepalive hang), and the cut answer is never cached.
# Requests are sent raw, on a keepalive connection, so that a response
# passed off as complete or a connection left open shows.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use Time::HiRes qw(time);

repeat_each(1);
no_shuffle();
no_long_string();

my $J = JSON::PP->new->canonical;

sub reqs { @{ mock_log()->{requests} } }

# raw($path, $body, header => value...): one request on a keepalive
# connection, read until the server closes it or 5 s pass; a complete
# response is given 0.3 s more to show whether the connection stays open

sub raw {
    my ($path, $body, %h) = @_;

    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
        Proto    => 'tcp',
    ) or die "connect: $!";

    my $req = "POST $path HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\n"
            . join('', map { "$_: $h{$_}\r\n" } sort keys %h)
            . "Content-Length: " . length($body) . "\r\n\r\n$body";

    my $t0 = time;
    syswrite($sock, $req) or die "write: $!";

    my ($buf, $eof, $r, $sel) = ('', 0, undef, IO::Select->new($sock));
    my $deadline = $t0 + 5;

    while (time < $deadline) {
        last unless $sel->can_read($deadline - time);

        my $n = sysread($sock, $buf, 65536, length $buf);
        if (!$n) {
            $eof = 1;
            last;
        }

        $r = parse($buf);

        if ($r->{complete} && $deadline > time + 0.3) {
            $deadline = time + 0.3;
        }
    }

    close $sock;

    $r = parse($buf);
    $r->{dt} = time - $t0;
    $r->{eof} = $eof;

    return $r;
}

sub parse {
    my $buf = shift;

    my $i = index($buf, "\r\n\r\n");
    my $head = $i < 0 ? $buf : substr($buf, 0, $i);
    my $rest = $i < 0 ? '' : substr($buf, $i + 4);

    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my %hd;
    $hd{lc $1} = $2 while $head =~ /^([^:\r\n]+):[ \t]*(.*?)\r?$/mg;

    my $r = { status => $status // 0, headers => \%hd, raw => $rest,
              body => $rest, terminated => 0 };

    if (($hd{'transfer-encoding'} // '') eq 'chunked') {
        my ($data, $p) = ('', 0);

        while ($rest =~ /\G([0-9a-fA-F]+)\r\n/gc) {
            my $len = hex $1;
            $p = pos $rest;
            if ($len == 0) {
                $r->{terminated} = 1 if substr($rest, $p) =~ /^\r\n/;
                last;
            }
            $data .= substr($rest, $p, $len);
            last if length($rest) < $p + $len + 2;
            pos($rest) = $p + $len + 2;
        }

        $r->{body} = $data;
        $r->{complete} = $r->{terminated};

    } elsif (defined $hd{'content-length'}) {
        $r->{complete} = length($rest) >= $hd{'content-length'};
    }

    return $r;
}

my %mode = (
    'direct'          => {},
    'retries'         => { 'cf-aig-max-attempts' => 2 },
    'request timeout' => { 'cf-aig-request-timeout' => 5000 },
);

my %framing = (
    'chunked'        => 'size=1000;cut=100;chunked=1',
    'content-length' => 'size=1000;cut=100',
);

# the client sees the cut, at once; a second identical request is a MISS
# that reaches the provider

sub check_cut {
    my ($n, $framing, $send) = @_;

    mock_reset();

    my $r = $send->();

    is($r->{status}, 200, "$n - the provider's status");
    ok($r->{eof}, "$n - the connection is closed");
    cmp_ok($r->{dt}, '<', 3, "$n - at once, not after a keepalive timeout");
    is($r->{body}, substr('{"data":"' . 'x' x 989, 0, 100),
       "$n - the bytes before the cut reach the client");

    if ($framing eq 'chunked') {
        is($r->{headers}{'transfer-encoding'}, 'chunked', "$n - chunked");
        ok(!$r->{terminated}, "$n - no terminating chunk");

    } else {
        is($r->{headers}{'content-length'}, 1000, "$n - the length");
        cmp_ok(length $r->{raw}, '<', 1000, "$n - never reached");
    }

    is($r->{headers}{'cf-aig-cache-status'}, 'MISS', "$n - a MISS");

    my $again = $send->();

    is($again->{headers}{'cf-aig-cache-status'}, 'MISS',
       "$n - the cut answer was not cached");
    is(scalar(reqs()), 2, "$n - the second request reached the provider");
    cmp_ok($again->{dt}, '<', 3, "$n - it too is cut at once");
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", "ai_gateway_cache_zone aic:1m;")
        unless defined $block->http_config;

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_cache aic;
        ai_gateway_retry_delay 0;
        keepalive_timeout 60s;
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
        if ($name =~ /: \Q$k\E$/) {
            $scenario{$k}->($name);
        }
    }
});

for my $m (sort keys %mode) {
    for my $f (sort keys %framing) {
        $scenario{"$m, $f"} = sub {
            my $n = shift;
            my $b = qq{{"model":"gpt-4o","q":"$m $f"}};
            check_cut($n, $f, sub {
                raw("/v1/acct/gw/openai/chat/completions", $b,
                    %{ $mode{$m} }, 'cf-aig-cache-ttl' => 60,
                    'x-mock' => $framing{$f});
            });
        };
    }

    for my $f (sort keys %framing) {
        $scenario{"Unified API, $m, $f"} = sub {
            my $n = shift;
            my $b = $J->encode({ model => 'openai/gpt-4o-mini',
                                 q => "$m $f",
                                 messages => [ { role => 'user',
                                                 content => 'hi' } ] });
            check_cut($n, $f, sub {
                raw("/v1/acct/gw/compat/chat/completions", $b,
                    %{ $mode{$m} }, 'cf-aig-cache-ttl' => 60,
                    'authorization' => 'Bearer sk-test',
                    'x-mock' => $framing{$f});
            });
        };
    }
}

for my $f (sort keys %framing) {
    $scenario{"Universal step, $f"} = sub {
        my $n = shift;
        my $steps = $J->encode([ { provider => 'openai',
                                   endpoint => 'chat/completions',
                                   headers => { 'x-mock' => $framing{$f} },
                                   query => { model => 'gpt-4o',
                                              q => "universal $f" } } ]);
        check_cut($n, $f, sub {
            raw("/v1/acct/gw", $steps, 'cf-aig-cache-ttl' => 60);
        });
    };

    $scenario{"Universal fallback, $f"} = sub {
        my $n = shift;
        my $steps = $J->encode([ { provider => 'openai',
                                   endpoint => 'chat/completions',
                                   headers => { 'x-mock' => 'status=500' },
                                   query => { model => 'gpt-4o',
                                              q => "failing $f" } },
                                 { provider => 'openai',
                                   endpoint => 'chat/completions',
                                   headers => { 'x-mock' => $framing{$f} },
                                   query => { model => 'gpt-4o',
                                              q => "fallback $f" } } ]);
        mock_reset();
        my $r = raw("/v1/acct/gw", $steps);
        is($r->{status}, 200, "$n - the second step's status");
        ok($r->{eof} && $r->{dt} < 3, "$n - the connection closed at once");
        if ($f eq 'chunked') {
            ok(!$r->{terminated}, "$n - no terminating chunk");
        } else {
            cmp_ok(length $r->{raw}, '<', 1000, "$n - the length not reached");
        }
        is(scalar(reqs()), 2, "$n - both steps ran");
    };
}

# Anthropic through the Unified API: a JSON answer is translated whole and
# its status held until then, so a cut one is a 502 in the gateway's
# envelope (retried like one); a translated stream cut short ends with an
# error event.  Through an attempt as without one.

for my $m (sort keys %mode) {
    $scenario{"Unified API, Anthropic, $m"} = sub {
        my $n = shift;
        my %b = (model => 'anthropic/claude-sonnet-4-5',
                 messages => [ { role => 'user', content => 'hi' } ]);

        mock_reset();
        my $r = raw("/v1/acct/gw/compat/chat/completions", $J->encode(\%b),
                    %{ $mode{$m} }, 'authorization' => 'Bearer sk-ant',
                    'x-mock' => 'size=1000;cut=100');
        is($r->{status}, 502, "$n - whole: 502");
        ok($r->{dt} < 3, "$n - whole: at once");
        like($r->{body}, qr/"code":2005,"message":"The provider's answer was cut short"/,
             "$n - whole: nothing passed off as an answer");
        is(scalar(reqs()), $m eq 'retries' ? 2 : 1,
           "$n - whole: retried like a 502");

        $b{stream} = JSON::PP::true;
        $r = raw("/v1/acct/gw/compat/chat/completions", $J->encode(\%b),
                 %{ $mode{$m} }, 'authorization' => 'Bearer sk-ant',
                 'x-mock' => 'fixture=anthropic/stream-text.sse;'
                             . 'interval=2;close_after=3');
        is($r->{status}, 200, "$n - stream: the provider's status");
        like($r->{body}, qr/"role":"assistant".*data: \{"error":\{/s,
             "$n - stream: the error event after the events");
        ok($r->{terminated}, "$n - stream: which ends it, as without attempts");
        ok($r->{dt} < 3, "$n - stream: at once");
    };
}

$scenario{'complete answers keep the connection'} = sub {
    my $n = shift;
    for my $m (sort keys %mode) {
        for my $f (sort keys %framing) {
            (my $x = $framing{$f}) =~ s/;cut=100//;
            my $r = raw("/v1/acct/gw/openai/chat/completions", '{}',
                        %{ $mode{$m} }, 'x-mock' => $x);
            is(length $r->{body}, 1000, "$n - $m, $f: the whole body");
            ok(!$r->{eof}, "$n - $m, $f: the connection is kept");
            ok($r->{terminated}, "$n - $m, $f: the terminating chunk")
                if $f eq 'chunked';
        }
    }
};

run_tests();

__DATA__

=== TEST 1: direct, chunked

=== TEST 2: direct, content-length

=== TEST 3: retries, chunked

=== TEST 4: retries, content-length

=== TEST 5: request timeout, chunked

=== TEST 6: request timeout, content-length

=== TEST 7: Universal step, chunked

=== TEST 8: Universal step, content-length

=== TEST 9: Universal fallback, chunked

=== TEST 10: Universal fallback, content-length

=== TEST 11: Unified API, direct, chunked

=== TEST 12: Unified API, direct, content-length

=== TEST 13: Unified API, retries, chunked

=== TEST 14: Unified API, retries, content-length

=== TEST 15: Unified API, request timeout, chunked

=== TEST 16: Unified API, request timeout, content-length

=== TEST 17: Unified API, Anthropic, direct

=== TEST 18: Unified API, Anthropic, retries

=== TEST 19: Unified API, Anthropic, request timeout

=== TEST 20: complete answers keep the connection
