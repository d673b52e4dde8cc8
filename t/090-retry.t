# Copyright (C) ngx_ai_gateway contributors

# Retries and the request timeout: cf-aig-max-attempts, cf-aig-retry-delay,
# cf-aig-backoff, cf-aig-request-timeout and their directives.  The mock is
# scripted per attempt (x-mock "script=NAME;tryN=..."): 500, 429, connection
# reset, a hang past the timeout, a slow first byte.  Each scenario runs
# against the block's nginx in the response body check; the block's own
# request only proves nginx is up.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);

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
sub reqs { @{ mock_log()->{requests} } }

# script(try1 => 'status=500', ...): the x-mock header of a scripted run
my $runs = 0;
sub script {
    my %t = @_;
    $runs++;
    return join ';', "script=s$runs",
        map { my $v = $t{$_}; $v =~ s/;/%3B/g; "$_=$v" } sort keys %t;
}

sub code_of {
    my $r = shift;
    my $j = eval { json_decode($r->{content}) } or return undef;
    return $j->{error}[0]{code};
}

# the waits between attempts, as the mock saw them (ms)
sub gaps {
    my @r = reqs();
    return map { int($r[$_]{t_start} - $r[$_ - 1]{t_end} + 0.5) }
           1 .. $#r;
}

add_block_preprocessor(sub {
    my $block = shift;

    my $extra = $block->gateway // '';

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_retry_delay 0;
        $extra
        add_header X-Attempts "\$ai_gateway_attempts|\$ai_gateway_attempt_statuses|\$ai_gateway_upstream_status" always;
        add_header X-Times "\$ai_gateway_attempt_times|\$ai_gateway_step" always;
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

$scenario{'500 then 200'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{"model":"gpt-4o"}', 'cf-aig-max-attempts' => 3,
               'x-mock' => script(try1 => 'status=500'));
    is($r->{status}, 200, "$n - the second attempt's 200");
    like($r->{content}, qr/"path":"\/v1\/chat\/completions"/,
         "$n - its body");
    is(scalar(reqs()), 2, "$n - two upstream requests");
    is($r->{headers}{'x-attempts'}, '2|500, 200|200', "$n - variables");
    like($r->{headers}{'x-times'}, qr/^\d+, \d+\|0$/,
         "$n - \$ai_gateway_attempt_times, \$ai_gateway_step");
    is($r->{headers}{'cf-aig-step'}, '0', "$n - cf-aig-step");
    ok($r->{headers}{'cf-aig-log-id'}, "$n - one log id");
    my @r = reqs();
    is($r[1]{body}, '{"model":"gpt-4o"}', "$n - the body sent again");
};

$scenario{'429 twice'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 3,
               'x-mock' => script(try1 => 'status=429', try2 => 'status=429'));
    is($r->{status}, 200, "$n - third attempt answers");
    is(scalar(reqs()), 3, "$n - three upstream requests");
    is($r->{headers}{'x-attempts'}, '3|429, 429, 200|200', "$n - statuses");
};

$scenario{'all attempts fail'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 3,
               'x-mock' => 'status=503;header=x-last:yes');
    is($r->{status}, 503, "$n - the last attempt's status");
    is($r->{headers}{'x-last'}, 'yes', "$n - the provider's own response");
    is(scalar(reqs()), 3, "$n - three upstream requests");
    is($r->{headers}{'x-attempts'}, '3|503, 503, 503|503', "$n - statuses");
};

$scenario{'client errors'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 3,
               'x-mock' => 'status=400');
    is($r->{status}, 400, "$n - a 400 is the answer");
    is(scalar(reqs()), 1, "$n - not retried");
    mock_reset();
    $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 3,
            'x-mock' => 'status=404');
    is(scalar(reqs()), 1, "$n - nor a 404");
};

$scenario{'connection reset'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 2,
               'x-mock' => script(try1 => 'reset=1'));
    is($r->{status}, 200, "$n - the retry answers");
    is(scalar(reqs()), 2, "$n - two upstream requests");
    like($r->{headers}{'x-attempts'}, qr/^2\|502, 200\|200$/,
         "$n - the reset counts as 502");
    $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 2, 'x-mock' => 'reset=1');
    is($r->{status}, 502, "$n - both reset: 502");
    is(code_of($r), 2005, "$n - in the gateway's envelope");
};

$scenario{'connection refused'} = sub {
    my $n = shift;
    my $r = gw("/v1/acct/gw/custom-down/x", '{}', 'cf-aig-max-attempts' => 3);
    is($r->{status}, 502, "$n - 502 after the attempts");
    is($r->{headers}{'x-attempts'}, '3|502, 502, 502|502', "$n - three");
};

$scenario{'hang past the timeout'} = sub {
    my $n = shift;
    my $t = time;
    my $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 2,
               'cf-aig-request-timeout' => 300,
               'x-mock' => script(try1 => 'hang=1'));
    my $dt = time - $t;
    is($r->{status}, 200, "$n - the second attempt answers");
    ok($dt >= 0.29, "$n - after the timeout ($dt s)");
    my ($t1) = split /, /, $r->{headers}{'x-times'};
    ok($t1 >= 295, "$n - the first attempt's time: $t1 ms");
    is(scalar(reqs()), 2, "$n - two upstream requests");
    like($r->{headers}{'x-attempts'}, qr/^2\|504, 200\|200$/,
         "$n - the first timed out");
    ok(mock_wait(sub { $_[0]{requests}[0]{aborted} }),
       "$n - its provider connection closed");
};

$scenario{'one attempt, late'} = sub {
    my $n = shift;
    my $t = time;
    my $r = gw(chat(), '{}', 'cf-aig-request-timeout' => 200,
               'x-mock' => 'first_byte_delay=3000');
    my $dt = time - $t;
    is($r->{status}, 504, "$n - 504");
    is(code_of($r), 2203, "$n - timeout code");
    ok($dt < 2.5, "$n - not waiting for the provider ($dt s)");
};

$scenario{'the final attempt waits'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 2,
               'cf-aig-request-timeout' => 200,
               'x-mock' => 'first_byte_delay=600');
    is($r->{status}, 200, "$n - the last attempt had no timeout");
    is(scalar(reqs()), 2, "$n - two upstream requests");
};

$scenario{'slow first byte, then a stream'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{"stream":true}', 'cf-aig-max-attempts' => 2,
               'cf-aig-request-timeout' => 2000,
               'x-mock' => 'first_byte_delay=300;sse=5;interval=400');
    is($r->{status}, 200, "$n - 200");
    my @ev = $r->{content} =~ /^data: /mg;
    is(scalar @ev, 6, "$n - the whole stream, longer than the timeout");
    is(scalar(reqs()), 1, "$n - one upstream request");
};

$scenario{'no retry once bytes are sent'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{"stream":true}', 'cf-aig-max-attempts' => 3,
               'x-mock' => 'sse=10;interval=20;close_after=3');
    is(scalar(reqs()), 1, "$n - a cut stream is not retried");
};

for my $b (['constant', 100, 100, 100], ['linear', 100, 200, 300],
           ['exponential', 100, 200, 400])
{
    my ($how, @want) = @$b;
    $scenario{"backoff $how"} = sub {
        my $n = shift;
        my $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 4,
                   'cf-aig-retry-delay' => 100, 'cf-aig-backoff' => $how,
                   'x-mock' => 'status=500');
        is(scalar(reqs()), 4, "$n - four attempts");
        my @g = gaps();
        for my $i (0 .. 2) {
            ok($g[$i] >= $want[$i] - 5 && $g[$i] < $want[$i] + 400,
               "$n - wait $i: $g[$i] ms, $want[$i] ms expected");
        }
    };
}

$scenario{'bad headers'} = sub {
    my $n = shift;
    for my $h (['cf-aig-max-attempts', '0'], ['cf-aig-max-attempts', '6'],
               ['cf-aig-max-attempts', 'two'], ['cf-aig-retry-delay', '5001'],
               ['cf-aig-retry-delay', '-1'], ['cf-aig-backoff', 'random'],
               ['cf-aig-request-timeout', '0'],
               ['cf-aig-request-timeout', '1.5'],
               ['cf-aig-max-attempts', ''])
    {
        my $r = gw(chat(), '{}', $h->[0] => $h->[1]);
        is($r->{status}, 400, "$n - $h->[0]: '$h->[1]' is a 400");
        is(code_of($r), 2204, "$n - $h->[0]: '$h->[1]' code 2204");
        like($r->{content}, qr/\Q$h->[0]\E/, "$n - the message names it");
    }
    is(scalar(reqs()), 0, "$n - nothing sent upstream");
};

$scenario{'directives'} = sub {
    my $n = shift;
    my $r = gw(chat(), '{}', 'x-mock' => script(try1 => 'status=502'));
    is($r->{status}, 200, "$n - ai_gateway_max_attempts retries");
    is(scalar(reqs()), 2, "$n - two upstream requests");
    mock_reset();
    $r = gw(chat(), '{}', 'cf-aig-max-attempts' => 1,
            'x-mock' => script(try1 => 'status=502'));
    is($r->{status}, 502, "$n - the request's header wins");
    is(scalar(reqs()), 1, "$n - one upstream request");
    my @r = reqs();
    ok(!grep(/^cf-aig/, keys %{ $r[0]{headers} }),
       "$n - no cf-aig-* header reaches the provider");
};

$scenario{'Unified API'} = sub {
    my $n = shift;
    my $r = gw("/v1/acct/gw/compat/chat/completions",
               '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
               'authorization' => 'Bearer sk-test',
               'cf-aig-max-attempts' => 2,
               'x-mock' => script(try1 => 'status=500'));
    is($r->{status}, 200, "$n - 200");
    my @r = reqs();
    is(scalar @r, 2, "$n - two upstream requests");
    like($r[1]{body}, qr/"model":"gpt-4o-mini"/, "$n - the provider's model");
};

$scenario{'cached attempts'} = sub {
    my $n = shift;
    my $b = '{"cache":1}';
    my $r1 = gw(chat(), $b, 'cf-aig-max-attempts' => 2,
                'x-mock' => script(try1 => 'status=500'));
    my $r2 = gw(chat(), $b, 'cf-aig-max-attempts' => 2);
    is($r1->{headers}{'cf-aig-cache-status'}, 'MISS', "$n - MISS");
    is($r2->{headers}{'cf-aig-cache-status'}, 'HIT', "$n - then a HIT");
    is($r2->{content}, $r1->{content}, "$n - the same body");
    is(scalar(reqs()), 2, "$n - no third upstream request");
    my @c = $r1->{headers}{'cf-aig-cache-status'};
    is(ref $c[0], '', "$n - one cache status header");
};

$scenario{'client goes away'} = sub {
    my $n = shift;
    my $ht = HTTP::Tiny->new(timeout => 0.5, keep_alive => 0);
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}" . chat();
    my %h = ('content-type' => 'application/json',
             'cf-aig-max-attempts' => 3, 'cf-aig-retry-delay' => 1500);
    my $r = $ht->request('POST', $url, { content => '{}',
                         headers => { %h, 'x-mock' => 'status=500' } });
    is($r->{status}, 599, "$n - the client gave up during the wait");
    sleep 2.5;
    is(scalar(reqs()), 1, "$n - no attempt after the client left");
    mock_reset();
    $r = $ht->request('POST', $url, { content => '{}',
                      headers => { %h, 'x-mock' => 'hang=1' } });
    ok(mock_wait(sub { $_[0]{requests}[0]{aborted} }),
       "$n - left during an attempt: its provider connection closed");
    sleep 2;
    is(scalar(reqs()), 1, "$n - and no other attempt");
    is(gw(chat(), '{}')->{status}, 200, "$n - the worker serves on");
};

run_tests();

__DATA__

=== TEST 1: 500 then 200

=== TEST 2: 429 twice

=== TEST 3: all attempts fail

=== TEST 4: client errors

=== TEST 5: connection reset

=== TEST 6: connection refused
--- gateway
ai_gateway_provider custom-down http://127.0.0.1:1;

=== TEST 7: hang past the timeout

=== TEST 8: one attempt, late

=== TEST 9: the final attempt waits

=== TEST 10: slow first byte, then a stream

=== TEST 11: no retry once bytes are sent

=== TEST 12: backoff constant

=== TEST 13: backoff linear

=== TEST 14: backoff exponential

=== TEST 15: bad headers

=== TEST 16: directives
--- gateway
ai_gateway_max_attempts 2;

=== TEST 17: Unified API

=== TEST 18: cached attempts
--- http_config
ai_gateway_cache_zone aic:1m;
--- gateway
ai_gateway_cache aic; ai_gateway_cache_ttl 60;

=== TEST 19: client goes away
--- no_error_log
[alert]
[crit]
[emerg]
[error]
