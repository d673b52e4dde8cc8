# Copyright (C) ngx_ai_gateway contributors

# Spend limits (ai_gateway_limit cost=): the cost of each answer charged
# after it, a request refused once the rule's window has spent its limit
# (429, code 2045, the hosted gateway's message); partitions (key=, e.g. a
# cf-aig-metadata key through a map), filters (model=, provider=, when=),
# streamed answers charged with their counted cost, and the rule in Redis.

use lib 't/lib';
use AIGW::Test;
use AIGW::Redis;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep);

repeat_each(1);
no_shuffle();
no_long_string();
master_on();

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

BEGIN { $ENV{TEST_NGINX_REDIS_PORT} = redis_free_port() }

our $REDIS_PID = redis_start($ENV{TEST_NGINX_REDIS_PORT});

END { local $?; redis_stop($REDIS_PID) }

# the cost is charged in the log phase, after the answer has left: the
# next request waits for it
sub gw {
    my ($path, $body, %h) = @_;
    my $r = $HT->request('POST',
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'content-type' => 'application/json', %h },
          content => $body });
    sleep($ENV{TEST_NGINX_USE_VALGRIND} ? 1 : 0.2);
    return $r;
}

sub chat { "/v1/acct/$_[0]/openai/chat/completions" }

sub err {
    my $r = shift;
    my $j = eval { json_decode($r->{content}) } or return '';
    return "$j->{error}[0]{code} $j->{error}[0]{message}";
}

my $NANO = '{"model":"gpt-4.1-nano","messages":[]}';
my $TEXT = 'fixture=openai-chat/text.json';      # $0.0001468

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", "ai_gateway_limit_zone limits:1m;\n"
        . "ai_gateway_redis r 127.0.0.1:\$TEST_NGINX_REDIS_PORT;\n"
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
            redis_cmd({ port => $ENV{TEST_NGINX_REDIS_PORT} }, 'FLUSHALL');
            $scenario{$k}->($name);
        }
    }
});

for my $g (qw(shm redis)) {
    $scenario{"a rule in $g"} = sub {
        my $n = shift;
        my @r = map { gw(chat($g), $NANO, 'x-mock' => $TEXT) } 1 .. 3;
        is(join(' ', map { $_->{status} } @r), "200 200 200",
           "$n - \$0 to \$0.0002936 spent: pass");
        is(join(' ', map { $_->{headers}{'x-spend-left'} } @r),
           "0.0003 0.0001532 0.0000064",
           "$n - \$ai_gateway_limit_spend_remaining: the budget left");
        my $r = gw(chat($g), $NANO, 'x-mock' => $TEXT);
        is($r->{status}, 429, "$n - \$0.0004404 spent: refused");
        is($r->{headers}{'x-spend-left'}, '0', "$n - refused: nothing left");
        is(err($r), "2045 Spend limit exceeded: rule 'budget' (cost limit "
                    . "0.0003 per 3600s, sliding) for openai gpt-4.1-nano",
           "$n - code 2045 and the hosted gateway's message");
        is($r->{headers}{'x-limit'}, 'budget', "$n - \$ai_gateway_limit");
        is(scalar @{ mock_log()->{requests} }, 3,
           "$n - the refused request reaches no provider");
    };
}

$scenario{'partitions'} = sub {
    my $n = shift;
    my @s = map { gw(chat('gw'), $NANO, 'x-mock' => $TEXT,
                     'cf-aig-metadata' => qq({"user":"$_"}))->{status} }
            qw(u1 u1 u1 u2 u2 u1);
    is("@s", "200 200 200 200 200 429",
       "$n - each user has a budget: u1 refused with \$0.0004404 spent");
    @s = map { gw(chat('gw'), $NANO, 'x-mock' => $TEXT)->{status} } 1 .. 3;
    is("@s", "200 200 200", "$n - no user: outside the partitioned rule");
};

$scenario{'filters'} = sub {
    my $n = shift;
    my @s = map { gw(chat('gw'), $NANO, 'x-mock' => $TEXT)->{status} }
            1 .. 3;
    is("@s", "200 200 429", "$n - gpt-4.1-nano is limited");
    @s = map { gw(chat('gw'), '{"model":"gpt-4o","messages":[]}',
                  'x-mock' => $TEXT)->{status} } 1 .. 3;
    is("@s", "200 200 200", "$n - another model is not");
    my @r = map { gw(chat('gw'), '{"model":"gpt-4o","messages":[]}',
                     'x-mock' => $TEXT, 'cf-aig-metadata' => '{"team":"a"}') }
            1 .. 4;
    is(join(' ', map { $_->{status} } @r), "200 200 200 429",
       "$n - team a (a metadata filter) has a budget of its own");
    is(err($r[3]), "2045 Spend limit exceeded: rule 'team-a' (cost limit "
                   . "0.0003 per 60s, fixed) for openai gpt-4o",
       "$n - refused by its rule");
    is(scalar @{ mock_log()->{requests} }, 8,
       "$n - the provider filter's rule (anthropic) never applied");
};

$scenario{'streamed'} = sub {
    my $n = shift;
    my $b = '{"model":"gpt-4o","stream":true,"messages":[],'
          . '"stream_options":{"include_usage":true}}';
    my $m = 'fixture=openai-chat/stream-text-usage.sse;interval=2';
    my @r = map { gw(chat('gw'), $b, 'x-mock' => $m) } 1 .. 3;
    is(join(' ', map { $_->{status} } @r), "200 200 429",
       "$n - \$0.000335 a stream: the third over \$0.0005 is refused");
    like($r[0]{content}, qr/\[DONE\]/, "$n - the stream was whole");
    my $b2 = '{"model":"gpt-4o","stream":true,"messages":[]}';
    @r = map { gw(chat('nousage'), $b2, 'x-mock' => $m) } 1 .. 3;
    is(join(' ', map { $_->{status} } @r), "200 200 429",
       "$n - include_usage added by the gateway: charged as well");
};

# charged after the answer: requests in flight together are all checked
# before any is charged, so they overshoot the limit by what they cost;
# measured here with 10 at once on a rule of $0.0003 (2 requests' worth)

$scenario{'overshoot'} = sub {
    my $n = shift;
    my $body = $NANO;
    my $req = "POST " . chat('gw') . " HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\nContent-Type: application/json\r\n"
            . "x-mock: $TEXT;first_byte_delay=300\r\n"
            . "Content-Length: " . length($body) . "\r\n\r\n$body";
    my @s = map {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
            or die "connect: $!"
    } 1 .. 10;
    syswrite($_, $req) for @s;
    my $ok = 0;
    for my $c (@s) {
        local $/;
        my $d = <$c> // '';
        $ok++ if $d =~ m{^HTTP/1\.1 200};
        close $c;
    }
    sleep($ENV{TEST_NGINX_USE_VALGRIND} ? 2 : 0.5);
    is($ok, 10, "$n - all 10 in flight pass: \$0.001468 spent of \$0.0003");
    my $r = gw(chat('gw'), $NANO, 'x-mock' => $TEXT);
    is($r->{status}, 429, "$n - the next one is refused");
};

run_tests();

__DATA__

=== TEST 1: a rule in shm and a rule in redis
--- config
location = /ping { return 200 ok; }
location /v1/acct/shm/ {
    ai_gateway shm;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits cost=0.0003 interval=3600s name=budget;
    add_header X-Limit $ai_gateway_limit always;
    add_header X-Spend-Left $ai_gateway_limit_spend_remaining always;
}
location /v1/acct/redis/ {
    ai_gateway redis;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit redis=r cost=0.0003 interval=3600s name=budget;
    add_header X-Limit $ai_gateway_limit always;
    add_header X-Spend-Left $ai_gateway_limit_spend_remaining always;
}



=== TEST 2: partitions
--- http_config
map $ai_gateway_metadata $user {
    '{"user":"u1"}'  u1;
    '{"user":"u2"}'  u2;
}
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits cost=0.0003 interval=1h key=$user
                     name=per-user;
}



=== TEST 3: filters
--- http_config
map $ai_gateway_metadata $team_a {
    '{"team":"a"}'  1;
}
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits cost=0.0002 interval=1h name=nano
                     model=gpt-4.1-nano,gpt-4.1-mini;
    ai_gateway_limit zone=limits cost=0.0003 interval=60s technique=fixed
                     when=$team_a name=team-a;
    ai_gateway_limit zone=limits cost=0.0001 interval=1h provider=anthropic
                     name=claude;
}



=== TEST 4: streamed
--- config
location = /ping { return 200 ok; }
location /v1/acct/gw/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits cost=0.0005 interval=1h;
}
location /v1/acct/nousage/ {
    ai_gateway nousage;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits cost=0.0005 interval=1h;
}



=== TEST 5: overshoot
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_limit zone=limits cost=0.0003 interval=1h;
}



=== TEST 6: model= is a spend limit's
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_limit zone=limits requests=1 interval=1m model=a;
}
--- must_die
--- error_log
"model=", "provider=" and "when=" are parameters of a spend limit ("cost=") in "ai_gateway_limit"



=== TEST 7: cost= has at most 9 decimals
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_limit zone=limits cost=0.0000000001 interval=1m;
}
--- must_die
--- error_log
invalid parameter "cost=0.0000000001" in "ai_gateway_limit"
