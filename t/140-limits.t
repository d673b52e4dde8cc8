# Copyright (C) ngx_ai_gateway contributors

# Rate limits in a shared memory zone: fixed and sliding windows (the
# hosted gateway's 12:09/12:11 example, the clock set by the test through
# ai_gateway_limit_clock), cache hits not counted, every route counted
# once (native, /compat, the Universal Endpoint, retries), token limits
# charged with the provider's counts, keyed limits, the RateLimit-*
# headers and the variables.  Scenarios run in the response body check, as
# in 080.

BEGIN { $ENV{AI_GATEWAY_TEST_CLOCK} = 1 }

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(sleep);

repeat_each(1);
no_shuffle();
no_long_string();
master_on();
workers(2);

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
my $J = JSON::PP->new->canonical;

sub gw {
    my ($path, $body, %h) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path";
    my $method = delete $h{method} // (defined $body ? 'POST' : 'GET');
    return $HT->request($method, $url, {
        headers => { 'content-type' => 'application/json', %h },
        defined $body ? (content => $body) : (),
    });
}

sub chat { "/v1/acct/$_[0]/openai/chat/completions" }

# tokens are charged in the log phase, after the answer has left: the next
# request waits for it
sub tgw {
    my $r = gw(@_);
    sleep($ENV{TEST_NGINX_USE_VALGRIND} ? 1 : 0.2);
    return $r;
}
sub reqs { scalar @{ mock_log()->{requests} } }

# the observed body of a refusal (the envelope adds fields after these)
sub observed {
    my $r = shift;
    my $j = eval { json_decode($r->{content}) } or return '';
    return $J->encode({ map { $_ => $j->{$_} }
                        qw(success result messages error) });
}

sub code_of {
    my $r = shift;
    my $j = eval { json_decode($r->{content}) } or return undef;
    return $j->{error}[0]{code};
}

my $REFUSED = '{"error":[{"code":2003,"message":"Rate limited"}],'
            . '"messages":[],"result":[],"success":false}';

# 12:00 of the test's day, in seconds since the epoch
my $NOON = 1_700_000_000 - 1_700_000_000 % 86400 + 12 * 3600;

sub at { my ($h, $m, $s) = @_; $NOON + ($h - 12) * 3600 + $m * 60 + ($s // 0) }

my $runs = 0;
sub script {
    my %t = @_;
    $runs++;
    return join ';', "script=s$runs",
        map { my $v = $t{$_}; $v =~ s/;/%3B/g; "$_=$v" } sort keys %t;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", "ai_gateway_limit_zone limits:1m;\n"
                                     . "ai_gateway_cache_zone aic:1m;\n"
                                     . ($block->http_config // ''));

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

# features.md 5.2: ten per ten minutes from 12:00; ten at 12:09 and ten at
# 12:11 all pass a fixed window, the second ten fail a sliding one

$scenario{'fixed and sliding'} = sub {
    my $n = shift;
    my (%ok, %refused);
    for my $g (qw(fixed sliding)) {
        for my $t (at(12, 9), at(12, 11)) {
            for (1 .. 10) {
                my $r = gw(chat($g), '{"x":1}', 'x-now' => $t);
                $r->{status} == 200 ? $ok{$g}++ : $refused{$g}++;
                if ($r->{status} == 429) {
                    is(observed($r), $REFUSED, "$n - $g: the observed body")
                        if $refused{$g} == 1;
                }
            }
        }
    }
    is($ok{fixed}, 20, "$n - fixed: all 20 pass");
    ok(!$refused{fixed}, "$n - fixed: none refused");
    is($ok{sliding}, 10, "$n - sliding: the ten at 12:09 pass");
    is($refused{sliding}, 10, "$n - sliding: the ten at 12:11 are refused");
    is(reqs(), 30, "$n - a refused request reaches no provider");

    # the 12:09 requests leave the last ten minutes at 12:19:00

    my $r = gw(chat('sliding'), '{"x":1}', 'x-now' => at(12, 18, 59));
    is($r->{status}, 429, "$n - sliding: still full at 12:18:59");
    $r = gw(chat('sliding'), '{"x":1}', 'x-now' => at(12, 19, 0));
    is($r->{status}, 200, "$n - sliding: a place at 12:19:00");
    $r = gw(chat('fixed'), '{"x":1}', 'x-now' => at(12, 19, 59));
    is($r->{status}, 429, "$n - fixed: the window 12:10-12:20 is full");
    $r = gw(chat('fixed'), '{"x":1}', 'x-now' => at(12, 20));
    is($r->{status}, 200, "$n - fixed: a new window at 12:20");
};

$scenario{'cache hits'} = sub {
    my $n = shift;
    my @s;
    push @s, gw(chat('gw'), '{"same":1}')->{status};

    # the entry is stored once the answer is complete, which may be just
    # after the client has it: the other worker could still miss it
    sleep 0.3;

    push @s, gw(chat('gw'), '{"same":1}')->{status} for 2 .. 5;
    is("@s", "200 200 200 200 200", "$n - a MISS and four HITs pass");
    is(reqs(), 1, "$n - one upstream request");
    my $r = gw(chat('gw'), '{"other":1}');
    is($r->{status}, 200, "$n - the second counted request passes");
    $r = gw(chat('gw'), '{"third":1}');
    is($r->{status}, 429, "$n - the third is refused");
    is(code_of($r), 2003, "$n - code 2003");
    $r = gw(chat('gw'), '{"same":1}');
    is($r->{status}, 200, "$n - a HIT still passes when the limit is used");
    is($r->{headers}{'cf-aig-cache-status'}, 'HIT', "$n - it is a HIT");
};

$scenario{'every route'} = sub {
    my $n = shift;
    my $compat = $J->encode({ model => 'openai/gpt-4o-mini',
                              messages => [ { role => 'user',
                                              content => 'hi' } ] });
    my $uni = sub {
        $J->encode([ { provider => 'openai', endpoint => 'chat/completions',
                       headers => { 'x-mock' => 'status=500' },
                       query => { model => 'a' } },
                     { provider => 'openai', endpoint => 'chat/completions',
                       query => { model => 'b' } } ]);
    };
    my $r = gw(chat('gw'), '{"x":1}');
    is($r->{status}, 200, "$n - native: 1");
    $r = gw('/v1/acct/gw/compat/chat/completions', $compat);
    is($r->{status}, 200, "$n - compat: 2");
    $r = gw('/v1/acct/gw', $uni->());
    is($r->{status}, 200, "$n - Universal, two steps: 3");
    $r = gw(chat('gw'), '{"x":2}', 'cf-aig-max-attempts' => 3,
            'x-mock' => script(try1 => 'status=500', try2 => 'status=500'));
    is($r->{status}, 200, "$n - three attempts: 4");
    is(reqs(), 7, "$n - seven upstream requests for four counted");
    like($r->{headers}{'x-limit'}, qr/^\|0$/, "$n - none left");

    $r = gw(chat('gw'), '{"x":3}');
    is($r->{status}, 429, "$n - native refused");
    is(observed($r), $REFUSED, "$n - the observed body");
    is($r->{headers}{'x-limit'}, 'requests|0', "$n - \$ai_gateway_limit");
    $r = gw('/v1/acct/gw/compat/chat/completions', $compat);
    is($r->{status}, 429, "$n - compat refused");
    is(code_of($r), 2003, "$n - code 2003");
    $r = gw('/v1/acct/gw', $uni->());
    is($r->{status}, 429, "$n - Universal refused");
    is(code_of($r), 2003, "$n - code 2003");
    $r = gw(chat('gw'), '{"x":4}', 'cf-aig-max-attempts' => 3);
    is($r->{status}, 429, "$n - a retried request refused");
    is(code_of($r), 2003, "$n - code 2003");
    is(reqs(), 7, "$n - no upstream request after the limit");
};

$scenario{'tokens'} = sub {
    my $n = shift;
    my $f = 'fixture=openai-chat/text.json';    # 16 in, 363 out
    my $r = tgw(chat('gw'), '{"a":1}', 'x-mock' => $f);
    is($r->{status}, 200, "$n - 1: 0 used");
    is($r->{headers}{'x-limit'}, '|800', "$n - all 800 left before it");
    $r = tgw(chat('gw'), '{"a":2}', 'x-mock' => $f);
    is($r->{status}, 200, "$n - 2: 379 used");
    is($r->{headers}{'x-limit'}, '|421', "$n - 421 left before it");
    $r = tgw(chat('gw'), '{"a":3}');
    is($r->{status}, 200, "$n - 3: 758 used, under 800");
    $r = tgw(chat('gw'), '{"a":4}');
    is($r->{status}, 200,
       "$n - 4: an answer without usage charged nothing");
    $r = tgw(chat('gw'), '{"a":5}', 'x-mock' => $f);
    is($r->{status}, 200, "$n - 5: 758 used");
    $r = tgw(chat('gw'), '{"a":6}', 'x-mock' => $f);
    is($r->{status}, 429, "$n - 6: 1137 used, refused");
    is($r->{headers}{'x-limit'}, 'tokens|0', "$n - by the token limit");
    $r = tgw(chat('in'), '{"a":7}', 'x-mock' => $f);
    is($r->{status}, 200, "$n - input 20: 0 used");
    $r = tgw(chat('in'), '{"a":8}', 'x-mock' => $f);
    is($r->{status}, 200, "$n - input 20: 16 used");
    $r = tgw(chat('in'), '{"a":9}', 'x-mock' => $f);
    is($r->{status}, 429, "$n - input 20: 32 used, refused");
    $r = tgw(chat('gw'), '{"a":10}', 'x-mock' => $f, 'x-now' => at(12, 1));
    is($r->{status}, 200, "$n - a new window");
};

$scenario{'keys'} = sub {
    my $n = shift;
    my @s = map { gw(chat('gw'), '{"k":1}', 'x-user' => $_)->{status} }
            qw(a a b b a);
    is("@s", "200 429 200 429 429", "$n - one request per user");
    @s = map { gw(chat('gw'), '{"k":1}')->{status} } 1 .. 3;
    is("@s", "200 200 200", "$n - an empty key is not limited");
    my $long = 'x' x 1000;
    @s = map { gw(chat('gw'), '{"k":1}', 'x-user' => $_)->{status} }
         $long, $long, $long . 'y';
    is("@s", "200 429 200", "$n - long keys (hashed) apart");
};

$scenario{'headers'} = sub {
    my $n = shift;
    my $t = at(12, 0, 15);
    my $r = gw(chat('gw'), '{"h":1}', 'x-now' => $t);
    is($r->{status}, 200, "$n - 200");
    is($r->{headers}{'ratelimit-limit'}, '2', "$n - RateLimit-Limit");
    is($r->{headers}{'ratelimit-remaining'}, '1', "$n - RateLimit-Remaining");
    is($r->{headers}{'ratelimit-reset'}, '45', "$n - RateLimit-Reset");
    ok(!exists $r->{headers}{'retry-after'}, "$n - no Retry-After");
    $r = gw(chat('gw'), '{"h":2}', 'x-now' => $t);
    is($r->{headers}{'ratelimit-remaining'}, '0', "$n - 0 left");
    $r = gw(chat('gw'), '{"h":3}', 'x-now' => $t + 5,
            'ratelimit-reset' => '1', 'retry-after' => 'x');
    is($r->{status}, 429, "$n - 429");
    is($r->{headers}{'retry-after'}, '40', "$n - Retry-After");
    is($r->{headers}{'ratelimit-reset'}, '40', "$n - RateLimit-Reset");
    is($r->{headers}{'ratelimit-remaining'}, '0', "$n - RateLimit-Remaining");
    $r = gw(chat('gw'), '{"h":4}', 'cf-aig-max-attempts' => 2,
            'x-now' => at(12, 1, 0),
            'x-mock' => script(try1 => 'status=500'));
    is($r->{status}, 200, "$n - a retried request");
    is($r->{headers}{'ratelimit-remaining'}, '1',
       "$n - its headers once the attempt is committed");
};

# the refusal in the request's log record: its status, and the envelope
# as its response payload

$scenario{'log record'} = sub {
    my $n = shift;
    my $r1 = gw(chat('gw'), '{"l":1}');
    my $r2 = gw(chat('gw'), '{"l":2}');
    is($r2->{status}, 429, "$n - refused");
    my $id = $r2->{headers}{'cf-aig-log-id'};
    ok($id, "$n - with a log id");
    sleep(0.3);    # the record is made in the log phase, after the answer
    my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
             . "/client/v4/accounts/acct/ai-gateway/gateways/gw/logs/$id";
    my $rec = eval { json_decode($HT->get($base)->{content})->{result} };
    is($rec->{status_code}, 429, "$n - the record's status_code");
    ok(!$rec->{success}, "$n - not a success");
    my $p = $HT->get("$base/response");
    is(observed($p), $REFUSED,
       "$n - the envelope (code 2003) as the response payload");
};

run_tests();

__DATA__

=== TEST 1: fixed and sliding
--- config
location = /ping { return 200 ok; }
location /v1/acct/fixed/ {
    ai_gateway fixed;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits requests=10 interval=10m technique=fixed;
    ai_gateway_limit_clock $http_x_now;
}
location /v1/acct/sliding/ {
    ai_gateway sliding;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits requests=10 interval=10m technique=sliding;
    ai_gateway_limit_clock $http_x_now;
}



=== TEST 2: cache hits are not counted
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache aic;
    ai_gateway_cache_ttl 60;
    ai_gateway_limit zone=limits requests=2 interval=1h;
}



=== TEST 3: every route is counted once: native, compat, Universal, retries
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_retry_delay 0;
    ai_gateway_limit zone=limits requests=4 interval=1h technique=sliding;
    add_header X-Limit "$ai_gateway_limit|$ai_gateway_limit_remaining" always;
}



=== TEST 4: tokens
--- config
location = /ping { return 200 ok; }
location /v1/acct/gw/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits tokens=800 interval=1m;
    ai_gateway_limit_clock $http_x_now;
    add_header X-Limit "$ai_gateway_limit|$ai_gateway_limit_remaining" always;
}
location /v1/acct/in/ {
    ai_gateway in;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits tokens=20 count=input interval=1m
                     technique=sliding name=in;
}



=== TEST 5: keys
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits requests=1 interval=1h key=$http_x_user;
}



=== TEST 6: headers
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_retry_delay 0;
    ai_gateway_limit zone=limits requests=2 interval=1m;
    ai_gateway_limit_headers on;
    ai_gateway_limit_clock $http_x_now;
}



=== TEST 7: log record
--- http_config
ai_gateway_log_zone logs:1m;
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw account=acct;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_logs logs;
    ai_gateway_limit zone=limits requests=1 interval=1h;
}
location /client/v4/ {
    ai_gateway_api;
}



=== TEST 8: a limit needs zone=, a count and an interval
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_limit zone=limits interval=1m;
}
--- must_die
--- error_log
"ai_gateway_limit" needs one of "zone=" or "redis=", one of "requests=", "tokens=" or "cost=", and "interval="



=== TEST 9: an unknown parameter
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_limit zone=limits requests=1 interval=1m technique=leaky;
}
--- must_die
--- error_log
invalid parameter "technique=leaky" in "ai_gateway_limit"



=== TEST 10: a zone never declared
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_limit zone=nosuch requests=1 interval=1m;
}
--- must_die
--- error_log
zero size shared memory zone "nosuch"



=== TEST 11: two limits of a location with one name
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_limit zone=limits requests=1 interval=1m;
    ai_gateway_limit zone=limits requests=5 interval=1h;
}
--- must_die
--- error_log
duplicate limit name "requests"
