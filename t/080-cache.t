# Copyright (C) ngx_ai_gateway contributors

# The response cache, shared-memory store: keys, cf-aig-cache-* headers,
# what is stored and what is not, streamed replay, coalescing, eviction and
# reload.  Each scenario runs against the block's nginx, in the response
# body check below; the block's own request only proves nginx is up.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use IO::Socket::INET ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();
master_on();

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

# gw($path, $body, header => value...): one request, an HTTP::Tiny response

sub gw {
    my ($path, $body, %h) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path";
    my $method = delete $h{method} // (defined $body ? 'POST' : 'GET');
    return $HT->request($method, $url, {
        headers => { 'content-type' => 'application/json', %h },
        defined $body ? (content => $body) : (),
    });
}

sub chat { "/v1/acct/gw/openai/chat/completions" }

sub upstream_count { scalar @{ mock_log()->{requests} } }

sub status_of { $_[0]{headers}{'cf-aig-cache-status'} // '' }

# raw_many($n, $raw_request): n connections at once, the full answers

sub raw_many {
    my ($n, $req) = @_;
    my @s = map {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
            or die "connect: $!"
    } 1 .. $n;
    syswrite($_, $req) for @s;
    my @out;
    for my $s (@s) {
        local $/;
        my $d = <$s>;
        push @out, $d // '';
        close $s;
    }
    return @out;
}

sub raw_post {
    my ($path, $body, @h) = @_;
    return "POST $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
         . "Content-Type: application/json\r\n"
         . join('', map { "$_\r\n" } @h)
         . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

sub unchunk {
    my $raw = shift;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    return ($head, $body) unless $head =~ /transfer-encoding: chunked/i;
    my $out = '';
    while ($body =~ s/\A([0-9a-f]+)\r\n//i) {
        my $n = hex $1;
        last if $n == 0;
        $out .= substr($body, 0, $n, '');
        $body =~ s/\A\r\n//;
    }
    return ($head, $out);
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", "ai_gateway_cache_zone aic:1m;\n"
                                     . ($block->http_config // ''));

    my $extra = $block->gateway // "ai_gateway_cache_ttl 60;\n";

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_cache aic;
        $extra
        add_header X-Cache-Var "\$ai_gateway_cache_status \$ai_gateway_cache_key";
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

$scenario{'HIT and MISS'} = sub {
    my $n = shift;
    my $b = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hit"}]}';
    my $r1 = gw(chat(), $b);
    my $r2 = gw(chat(), $b);
    is($r1->{status}, 200, "$n - first 200");
    is(status_of($r1), 'MISS', "$n - first is a MISS");
    is(status_of($r2), 'HIT', "$n - second is a HIT");
    is($r2->{content}, $r1->{content}, "$n - same body");
    is($r2->{headers}{'x-request-id'}, $r1->{headers}{'x-request-id'},
       "$n - the provider's request id is kept");
    like($r2->{headers}{'content-type'}, qr{^application/json},
         "$n - content type kept");
    is($r2->{headers}{'content-length'}, length $r1->{content},
       "$n - content length");
    ok($r2->{headers}{'cf-aig-log-id'}, "$n - a log id of its own");
    isnt($r2->{headers}{'cf-aig-log-id'}, $r1->{headers}{'cf-aig-log-id'},
         "$n - not the first request's log id");
    like($r2->{headers}{'x-cache-var'}, qr/^HIT [0-9a-f]{64}$/,
         "$n - \$ai_gateway_cache_status and \$ai_gateway_cache_key");
    is((split / /, $r1->{headers}{'x-cache-var'})[1],
       (split / /, $r2->{headers}{'x-cache-var'})[1], "$n - same key");
    is(upstream_count(), 1, "$n - one upstream request");
};

$scenario{'key order'} = sub {
    my $n = shift;
    my $r1 = gw(chat(), '{"a":1,"b":{"y":[1,2,{"q":true,"p":null}],"x":"s"}}');
    my $r2 = gw(chat(), qq({ "b" : { "x" : "s", "y" : [ 1, 2, {"p":null,\n"q":true} ] }, "a" : 1 }));
    my $r3 = gw(chat(), '{"a":1,"b":{"y":[2,1,{"q":true,"p":null}],"x":"s"}}');
    is(status_of($r1), 'MISS', "$n - first MISS");
    is(status_of($r2), 'HIT', "$n - reordered, spaced body HITs");
    is(status_of($r3), 'MISS', "$n - array order matters");
    my $r4 = gw(chat(), 'not json {', 'content-type' => 'text/plain');
    my $r5 = gw(chat(), 'not json {', 'content-type' => 'text/plain');
    my $r6 = gw(chat(), 'not json  {', 'content-type' => 'text/plain');
    is(status_of($r5), 'HIT', "$n - bytes body HIT");
    is(status_of($r6), 'MISS', "$n - other bytes MISS");
    is(upstream_count(), 4, "$n - four upstream requests");
};

$scenario{'different credentials'} = sub {
    my $n = shift;
    my $b = '{"cred":1}';
    my $r1 = gw(chat(), $b, authorization => 'Bearer sk-a');
    my $r2 = gw(chat(), $b, authorization => 'Bearer sk-b');
    my $r3 = gw(chat(), $b, authorization => 'Bearer sk-a');
    my $r4 = gw(chat(), $b);
    is(status_of($r1), 'MISS', "$n - tenant a MISS");
    is(status_of($r2), 'MISS', "$n - tenant b does not see a's entry");
    is(status_of($r3), 'HIT', "$n - tenant a HIT");
    is(status_of($r4), 'MISS', "$n - no credential: its own entry");
};

$scenario{'gateway scope'} = sub {
    my $n = shift;
    my $b = '{"cred":2}';
    my $r1 = gw(chat(), $b, authorization => 'Bearer sk-a');
    my $r2 = gw(chat(), $b, authorization => 'Bearer sk-b');
    is(status_of($r2), 'HIT', "$n - one entry for the whole gateway");
};

$scenario{'errors not stored'} = sub {
    my $n = shift;
    my $b = '{"err":1}';
    my $r1 = gw(chat(), $b, 'x-mock' => 'status=429');
    my $r2 = gw(chat(), $b, 'x-mock' => 'status=429');
    is($r1->{status}, 429, "$n - 429 relayed");
    is(status_of($r2), 'MISS', "$n - a 429 is not stored");
    my $r3 = gw(chat(), $b, 'x-mock' => 'status=500');
    is(status_of($r3), 'MISS', "$n - nor a 500");
    my $r4 = gw(chat(), $b);
    my $r5 = gw(chat(), $b);
    is($r4->{status}, 200, "$n - then a 200");
    is(status_of($r5), 'HIT', "$n - which is stored");
    is(upstream_count(), 4, "$n - upstream requests");
};

$scenario{'truncated'} = sub {
    my $n = shift;
    my $b = '{"stream":true,"cut":1}';
    gw(chat(), $b, 'x-mock' => 'sse=6;interval=20;close_after=3');
    my $r2 = gw(chat(), $b, 'x-mock' => 'sse=6;interval=20');
    is(status_of($r2), 'MISS', "$n - a cut stream is not stored");
    my $b2 = '{"cut":2}';
    gw(chat(), $b2, 'x-mock' => 'garbage=1');
    my $r4 = gw(chat(), $b2);
    is(status_of($r4), 'MISS', "$n - a broken response is not stored");
    is(upstream_count(), 4, "$n - upstream requests");
};

$scenario{'size cap'} = sub {
    my $n = shift;
    my $r1 = gw(chat(), '{"big":1}', 'x-mock' => 'size=3000');
    my $r2 = gw(chat(), '{"big":1}', 'x-mock' => 'size=3000');
    is(length $r2->{content}, 3000, "$n - the response passed whole");
    is(status_of($r2), 'MISS', "$n - over the cap: not stored");
    my $r3 = gw(chat(), '{"big":2}', 'x-mock' => 'size=500');
    my $r4 = gw(chat(), '{"big":2}', 'x-mock' => 'size=500');
    is(status_of($r4), 'HIT', "$n - under the cap: stored");
};

$scenario{'TTL bounds'} = sub {
    my $n = shift;
    for my $v ('59', 'abc', '2592001', '-5', '', '1e3') {
        my $r = gw(chat(), '{"t":1}', 'cf-aig-cache-ttl' => $v);
        is($r->{status}, 400, "$n - cf-aig-cache-ttl '$v' is a 400");
        like($r->{content}, qr/"code":2204.*cf-aig-cache-ttl must be 0, or 60 to 2592000 seconds/,
             "$n - '$v': the gateway's envelope");
    }
    my $r = gw(chat(), '{"t":1}', 'cf-cache-ttl' => '30');
    is($r->{status}, 400, "$n - legacy cf-cache-ttl checked too");
    for my $v ('60', '2592000') {
        my $r = gw(chat(), qq({"t":"$v"}), 'cf-aig-cache-ttl' => $v);
        my $r2 = gw(chat(), qq({"t":"$v"}), 'cf-aig-cache-ttl' => $v);
        is(status_of($r2), 'HIT', "$n - $v accepted");
    }
    my $r3 = gw(chat(), '{"t":0}', 'cf-aig-cache-ttl' => '0');
    my $r4 = gw(chat(), '{"t":0}', 'cf-aig-cache-ttl' => '0');
    is(status_of($r4), 'MISS', "$n - 0: not cached");
    my $r5 = gw(chat(), '{"t":0}');
    is(status_of($r5), 'MISS', "$n - 0: not stored either");
};

$scenario{'per-request TTL'} = sub {
    my $n = shift;
    my $r1 = gw(chat(), '{"p":1}');
    my $r2 = gw(chat(), '{"p":1}');
    is(status_of($r2), 'MISS', "$n - gateway TTL 0: no caching");
    gw(chat(), '{"p":2}', 'cf-aig-cache-ttl' => '3600');
    my $r4 = gw(chat(), '{"p":2}', 'cf-aig-cache-ttl' => '3600');
    is(status_of($r4), 'HIT', "$n - a per-request TTL turns it on");
    my $r5 = gw(chat(), '{"p":3}', 'cf-cache-ttl' => '120');
    my $r6 = gw(chat(), '{"p":3}', 'cf-cache-ttl' => '120');
    is(status_of($r6), 'HIT', "$n - legacy cf-cache-ttl too");
    unlike($r5->{content}, qr/cf-cache-ttl/i,
           "$n - cf-cache-ttl not forwarded");
    my $r7 = gw(chat(), '{"p":4}', 'cf-aig-cache-key' => 'responseA');
    my $r8 = gw(chat(), '{"p":5}', 'cf-aig-cache-key' => 'responseA');
    is(status_of($r8), 'HIT', "$n - custom key: cached (five minutes)");
    is($r8->{content}, $r7->{content}, "$n - the custom key's answer");
    my $r9 = gw(chat(), '{"p":4}', 'cf-aig-cache-key' => 'responseB');
    is(status_of($r9), 'MISS', "$n - another custom key");
    unlike($r7->{content}, qr/cf-aig-cache-key/i,
           "$n - cf-aig-cache-key not forwarded");
};

$scenario{'skip-cache'} = sub {
    my $n = shift;
    my $b = '{"skip":1}';
    my $r1 = gw(chat(), $b);
    my $r2 = gw(chat(), $b, 'cf-aig-skip-cache' => 'true');
    is(status_of($r2), 'MISS', "$n - skip: MISS");
    isnt($r2->{content}, $r1->{content}, "$n - a fresh answer");
    my $r3 = gw(chat(), $b);
    is(status_of($r3), 'HIT', "$n - then a HIT");
    is($r3->{content}, $r2->{content}, "$n - of the fresh answer");
    my $r4 = gw(chat(), $b, 'cf-skip-cache' => 'true');
    is(status_of($r4), 'MISS', "$n - legacy cf-skip-cache");
    unlike($r4->{content}, qr/cf-skip-cache/i, "$n - not forwarded");
    my $r5 = gw(chat(), $b, 'cf-aig-skip-cache' => 'false');
    is(status_of($r5), 'HIT', "$n - false: no skip");
    is(upstream_count(), 3, "$n - upstream requests");
};

$scenario{'TTL expiry'} = sub {
    my $n = shift;
    gw(chat(), '{"exp":1}');
    my $r2 = gw(chat(), '{"exp":1}');
    is(status_of($r2), 'HIT', "$n - HIT within the TTL");
    sleep 2.2;
    my $r3 = gw(chat(), '{"exp":1}');
    is(status_of($r3), 'MISS', "$n - MISS after it");
};

$scenario{'streamed replay'} = sub {
    my $n = shift;
    my $b = '{"stream":true,"s":1}';
    my ($h1, $b1) = unchunk((raw_many(1, raw_post(chat(), $b,
                                   'x-mock: sse=5;interval=20')))[0]);
    my ($h2, $b2) = unchunk((raw_many(1, raw_post(chat(), $b,
                                   'x-mock: sse=5;interval=20')))[0]);
    like($h1, qr/cf-aig-cache-status: MISS/i, "$n - MISS");
    like($h2, qr/cf-aig-cache-status: HIT/i, "$n - HIT");
    like($h2, qr{content-type: text/event-stream}i, "$n - as SSE");
    like($b1, qr/data: \{"i":4.*data: \[DONE\]/s, "$n - the whole stream");
    is($b2, $b1, "$n - events byte for byte");
    my $r3 = gw(chat(), $b, accept => 'application/json');
    is(status_of($r3), 'HIT', "$n - same body and accept: same entry");
    my $r4 = gw(chat(), '{"s":1}');
    my $r5 = gw(chat(), '{"s":1}', accept => 'text/event-stream');
    is(status_of($r5), 'MISS', "$n - a streaming request never gets a whole answer");
    is(upstream_count(), 3, "$n - upstream requests");
};

$scenario{'error event'} = sub {
    my $n = shift;
    my $b = '{"stream":true,"ev":1}';
    my $ev = 'event%3A error%0Adata%3A {"type":"error"}%0A%0A';
    gw(chat(), $b, 'x-mock' => 'fixture=anthropic/stream-text.sse;interval=1');
    my $r = gw(chat(), $b);
    is(status_of($r), 'HIT', "$n - a complete Anthropic stream is stored");
    like($r->{content}, qr/event: message_stop/, "$n - replayed");
    my $b2 = '{"stream":true,"ev":2}';
    gw(chat(), $b2, 'x-mock' => 'sse=0;header=x-y:1');
    my $r2 = gw(chat(), $b2);
    is(status_of($r2), 'HIT', "$n - a [DONE]-only stream too");
};

$scenario{'coalescing'} = sub {
    my $n = shift;
    my $b = '{"co":1}';
    my $t0 = time;
    my @out = raw_many(6, raw_post(chat(), $b, 'x-mock: first_byte_delay=400'));
    my @bodies = map { (unchunk($_))[1] } @out;
    is(upstream_count(), 1, "$n - six identical requests, one upstream call");
    is(scalar(grep { m{^HTTP/1.1 200} } @out), 6, "$n - six 200s");
    is(scalar(grep { $_ eq $bodies[0] } @bodies), 6, "$n - one answer");
    is(scalar(grep { /cf-aig-cache-status: MISS/i } @out), 1, "$n - one MISS");
    is(scalar(grep { /cf-aig-cache-status: HIT/i } @out), 5, "$n - five HITs");
    cmp_ok(time - $t0, '<', 2, "$n - the waiters did not wait for a timeout");

    mock_reset();
    my $sb = '{"stream":true,"co":2}';
    @out = raw_many(4, raw_post(chat(), $sb, 'x-mock: sse=4;interval=50'));
    @bodies = map { (unchunk($_))[1] } @out;
    is(upstream_count(), 1, "$n - streams: one upstream call");
    is(scalar(grep { $_ eq $bodies[0] && /\[DONE\]/ } @bodies), 4,
       "$n - streams: the same events for all");

    mock_reset();
    @out = raw_many(3, raw_post(chat(), '{"co":3}', 'x-mock: status=503;first_byte_delay=200'));
    is(upstream_count(), 3, "$n - a failed leader: the waiters go upstream");
    is(scalar(grep { m{^HTTP/1.1 503} } @out), 3, "$n - each with its answer");
};

$scenario{'lock timeout'} = sub {
    my $n = shift;
    my $t0 = time;
    my @out = raw_many(3, raw_post(chat(), '{"lt":1}', 'x-mock: first_byte_delay=1000'));
    is(upstream_count(), 3, "$n - waiters gave up and went upstream");
    is(scalar(grep { m{^HTTP/1.1 200} } @out), 3, "$n - all answered");
    cmp_ok(time - $t0, '<', 1.9, "$n - after the lock timeout, not after the leader");
};

$scenario{'client gone'} = sub {
    my $n = shift;
    my $req = raw_post(chat(), '{"gone":1}', 'x-mock: first_byte_delay=600');
    my $s1 = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                   PeerPort => $ENV{TEST_NGINX_SERVER_PORT});
    syswrite($s1, $req);
    sleep 0.1;
    my $s2 = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                   PeerPort => $ENV{TEST_NGINX_SERVER_PORT});
    syswrite($s2, $req);
    sleep 0.1;
    close $s2;
    local $/;
    my $d = <$s1>;
    like($d, qr{^HTTP/1.1 200}, "$n - the leader is answered");
    sleep 0.3;
    my $r = gw(chat(), '{"gone":1}');
    is(status_of($r), 'HIT', "$n - and stored");
};

$scenario{'eviction'} = sub {
    my $n = shift;
    for my $i (1 .. 12) {
        gw(chat(), qq({"ev":$i}), 'x-mock' => 'size=6000');
    }
    my $last = gw(chat(), '{"ev":12}', 'x-mock' => 'size=6000');
    is(status_of($last), 'HIT', "$n - the newest entry is there");
    my $first = gw(chat(), '{"ev":1}', 'x-mock' => 'size=6000');
    is(status_of($first), 'MISS', "$n - the oldest was evicted");
    is($first->{status}, 200, "$n - a full zone fails no request");
    my $huge = gw(chat(), '{"ev":"huge"}', 'x-mock' => 'size=200000');
    is($huge->{status}, 200, "$n - an entry larger than the zone: relayed");
    my $huge2 = gw(chat(), '{"ev":"huge"}', 'x-mock' => 'size=200000');
    is(status_of($huge2), 'MISS', "$n - and not stored");
};

$scenario{'reload'} = sub {
    my $n = shift;
    gw(chat(), '{"rl":1}');
    my $pidfile = "$Test::Nginx::Util::ServRoot/logs/nginx.pid";
    open my $fh, '<', $pidfile or die "$pidfile: $!";
    chomp(my $pid = <$fh>);
    kill 'HUP', $pid;
    sleep 1.5;
    my $r = gw(chat(), '{"rl":1}');
    is(status_of($r), 'HIT', "$n - the entry survived the reload");
    is(upstream_count(), 1, "$n - one upstream request");
};

$scenario{'compat'} = sub {
    my $n = shift;
    my $c = "/v1/acct/gw/compat/chat/completions";
    my $m = '"messages":[{"role":"user","content":"x"}]';
    my $r1 = gw($c, qq({"model":"openai/gpt-a",$m}), authorization => 'Bearer k');
    my $r2 = gw($c, qq({$m,"model":"openai/gpt-a"}), authorization => 'Bearer k');
    my $r3 = gw($c, qq({"model":"openai/gpt-b",$m}), authorization => 'Bearer k');
    is($r1->{status}, 200, "$n - 200");
    is(status_of($r2), 'HIT', "$n - same provider and model: HIT");
    is(status_of($r3), 'MISS', "$n - another model: MISS");
    my $r4 = gw(chat(), '{"model":"gpt-a",' . $m . '}', authorization => 'Bearer k');
    is(status_of($r4), 'MISS', "$n - the provider route keys on its own request");
};

$scenario{'HEAD and no store'} = sub {
    my $n = shift;
    my $r = gw("/v1/acct/gw/openai/models", undef);
    my $r2 = gw("/v1/acct/gw/openai/models", undef);
    is(status_of($r2), 'HIT', "$n - GET is cached");
    my $r3 = gw("/v1/acct/gw/openai/models", undef, method => 'HEAD');
    is(status_of($r3), 'MISS', "$n - HEAD is not");
};

run_tests();

__DATA__

=== TEST 1: HIT and MISS
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 2: key order insensitive bodies hit
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 3: different credentials never share
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 4: gateway scope shares across credentials
--- gateway
ai_gateway_cache_ttl 60;
ai_gateway_cache_scope gateway;



=== TEST 5: errors not stored
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 6: truncated responses not stored
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 7: size cap
--- gateway
ai_gateway_cache_ttl 60;
ai_gateway_cache_max_size 2k;



=== TEST 8: TTL bounds
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 9: per-request TTL, legacy headers, custom key on a gateway without caching
--- gateway
ai_gateway_cache_ttl 0;



=== TEST 10: skip-cache
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 11: TTL expiry (a short directive TTL)
--- gateway
ai_gateway_cache_ttl 1s;



=== TEST 12: streamed replay
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 13: error event; recorded streams
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 14: coalescing
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 15: lock timeout
--- gateway
ai_gateway_cache_ttl 60;
ai_gateway_cache_lock_timeout 300ms;



=== TEST 16: client gone while waiting
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 17: eviction under a small zone
--- http_config
ai_gateway_cache_zone small:64k;
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache small;
    ai_gateway_cache_ttl 60;
}



=== TEST 18: reload keeps the zone
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 19: compat keys on the resolved provider and model
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache aic;
    ai_gateway_cache_ttl 60;
}



=== TEST 20: HEAD and no store
--- gateway
ai_gateway_cache_ttl 60;



=== TEST 21: no zone: no cache status changes
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
}
--- request
POST /v1/acct/gw/openai/chat/completions
{"x":1}
--- more_headers
cf-aig-cache-ttl: 3600
cf-cache-ttl: 3600
cf-skip-cache: true
--- response_headers
cf-aig-cache-status: MISS
--- response_body_unlike: cf-cache-ttl|cf-skip-cache|cf-aig



=== TEST 22: $ai_gateway_model from the parse the cache key makes
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache aic;
    ai_gateway_cache_ttl 60;
    add_header X-Model "$ai_gateway_model" always;
}
--- request eval
[ qq(POST /v1/acct/gw/openai/chat/completions\n{"messages":[],"model":"gpt-4o-mini","x":{"model":"inner"}}),
  qq(POST /v1/acct/gw/openai/chat/completions\n{"messages":[],"model":"gpt-4o-mini","x":{"model":"inner"}}),
  qq(POST /v1/acct/gw/openai/chat/completions\nnot json) ]
--- response_headers eval
[ "X-Model: gpt-4o-mini\ncf-aig-cache-status: MISS",
  "X-Model: gpt-4o-mini\ncf-aig-cache-status: HIT",
  "X-Model: \ncf-aig-cache-status: MISS" ]
