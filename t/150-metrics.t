# Copyright (C) ngx_ai_gateway contributors

# Metrics in shared memory (docs/observability.md): exact counters and
# histogram buckets after a scripted mix of requests (streamed, a cache
# miss and hit, failures, a retried one, a Universal fallback, a translated
# /compat one, a rate-limited one), the JSON form, the series bound and
# its overflow, label escaping, a location with metrics off, and the
# numbers kept across a reload (SIGHUP).  Scenarios run in the response
# body check, as in 140.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use Digest::SHA qw(sha256_hex);
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
master_on();
workers(2);

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
my $J = JSON::PP->new->utf8->canonical;

sub url { "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$_[0]" }

sub gw {
    my ($path, $body, %h) = @_;
    my $method = delete $h{method} // (defined $body ? 'POST' : 'GET');
    return $HT->request($method, url($path), {
        headers => { 'content-type' => 'application/json', %h },
        defined $body ? (content => $body) : (),
    });
}

sub chat {
    my ($model, %more) = @_;
    return $J->encode({ model => $model,
                        messages => [ { role => 'user', content => 'hi' } ],
                        %more });
}

# the numbers are recorded in the log phase, after the answer has left:
# wait until the zone has seen n requests
sub metrics_json {
    my ($n, %h) = @_;
    my $j;
    my $t = time;
    do {
        my $r = $HT->get(url('/metrics?format=json'), { headers => \%h });
        $j = eval { json_decode($r->{content}) };
        return $j if !defined $n;
        my $got = 0;
        $got += $_->{ai_gateway_requests_total} for @{ $j->{series} || [] };
        return $j if $got >= $n;
        sleep 0.05;
    } while (time < $t + 5);
    return $j;
}

# the series of a label set, "gateway|provider|model|client|status|cached"
sub series {
    my ($j, $key) = @_;
    for my $s (@{ $j->{series} }) {
        my $l = $s->{labels};
        return $s if $key eq join '|', map { $l->{$_} }
                                       qw(gateway provider model client
                                          status cached);
    }
    return undef;
}

sub keys_of {
    my $j = shift;
    return join "\n", sort map {
        my $l = $_->{labels};
        join '|', map { $l->{$_} } qw(gateway provider model client status
                                      cached)
    } @{ $j->{series} };
}

# a series' counters, "requests hits misses in out cached reasoning
# retries fallbacks rate spend cost" (the cost in nano-dollars)
sub counters {
    my $s = shift or return 'no series';
    return join ' ', (map { $s->{"ai_gateway_${_}_total"} }
        qw(requests cache_hits cache_misses input_tokens output_tokens
           cached_tokens reasoning_tokens retries fallbacks rate_limited
           spend_limited)),
        sprintf('%.0f', $s->{ai_gateway_cost_usd_total} * 1e9);
}

sub errors {
    my $s = shift or return 'no series';
    return $J->encode($s->{ai_gateway_errors_total});
}

# a histogram's cumulative buckets, as "le:count" where the count changes
sub buckets {
    my ($s, $name) = @_;
    return 'no series' unless $s;
    my $h = $s->{$name};
    my ($prev, @out) = (0);
    for my $le (qw(0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120
                   +Inf))
    {
        push @out, "$le:$h->{buckets}{$le}" if $h->{buckets}{$le} != $prev;
        $prev = $h->{buckets}{$le};
    }
    return join(' ', @out) . " count:$h->{count}";
}

# the sum of $ai_gateway_cost of a gateway's requests to a provider with a
# status, in
# nano-dollars, from the access log
sub logged_cost {
    my ($gw, $provider, $status) = @_;
    my $sum = 0;
    open my $fh, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/cost.log"
        or return "no log";
    for (<$fh>) {
        chomp;
        my ($g, $p, $st, $cost) = split /\|/;
        $sum += sprintf('%.0f', $cost * 1e9)
            if $g eq $gw && $p eq $provider && $st == $status && $cost ne '';
    }
    return $sum;
}

sub text {
    return $HT->get(url('/metrics'))->{content};
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
                      "\$TEST_NGINX_PROVIDER_UPSTREAMS\n"
                      . "ai_gateway_cache_zone aic:1m;\n"
                      . "ai_gateway_limit_zone limits:1m;\n"
                      . "log_format cost '\$ai_gateway_id|\$ai_gateway_provider|\$status|"
                      . "\$ai_gateway_cost';\n"
                      . "access_log logs/cost.log cost;\n"
                      . ($block->http_config
                         // "ai_gateway_metrics_zone metrics:2m;\n"));

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

our $ALICE = 'cfat_alice_Lm20kq0aa7';
our $BOB = 'cfat_bob_Rr17zz19b2';
our $TOKENS = "$ALICE alice\nsha256:" . sha256_hex($BOB) . " bob\n";

my $TEXT = 'fixture=openai-chat/text.json';                 # 16 in, 363 out
my $STREAM = 'fixture=openai-chat/stream-text-usage.sse;interval=2';
                                                    # 14 in, 30 out
my $ANT = 'fixture=anthropic/cache-usage.json';

$scenario{'scripted mix'} = sub {
    my $n = shift;
    my $c = '/v1/acct/gw/openai/chat/completions';
    my @r;

    # 1: not streamed, the first byte after 1.5 s
    push @r, gw($c, chat('gpt-4o-mini'),
                'x-mock' => "$TEXT;first_byte_delay=1500");
    # 2: streamed
    push @r, gw($c, chat('gpt-4o-mini', stream => JSON::PP::true),
                'x-mock' => $STREAM);
    # 3, 4: a cache miss, then its hit
    my $cc = '/v1/acct/cache/openai/chat/completions';
    push @r, gw($cc, chat('gpt-4o'), 'x-mock' => $TEXT);
    push @r, gw($cc, chat('gpt-4o'), 'x-mock' => $TEXT);
    # 5: the provider fails
    push @r, gw($c, chat('gpt-4o-mini'), 'x-mock' => 'status=500');
    # 6: the gateway refuses (no such provider, code 2008)
    push @r, gw('/v1/acct/gw/nope/chat/completions', chat('gpt-4o-mini'));
    # 7: retried once
    push @r, gw($c, chat('gpt-4o-mini'), 'cf-aig-max-attempts' => 3,
                'x-mock' => "script=retry;try1=status=500;try2=$TEXT");
    # 8: the Universal Endpoint, its first step failing
    push @r, gw('/v1/acct/gw', $J->encode([
            { provider => 'openai', endpoint => 'chat/completions',
              headers => { 'x-mock' => 'status=500',
                           authorization => 'Bearer sk-a' },
              query => { model => 'gpt-4o-mini', messages => [] } },
            { provider => 'openai', endpoint => 'chat/completions',
              headers => { 'x-mock' => $TEXT,
                           authorization => 'Bearer sk-b' },
              query => { model => 'gpt-4o-mini', messages => [] } } ]));
    # 9: the Unified API, translated to Anthropic
    push @r, gw('/v1/acct/gw/compat/chat/completions',
                chat('anthropic/claude-3-5-sonnet-20241022'),
                'x-mock' => $ANT, authorization => 'Bearer sk-ant');
    # 10, 11: rate limited, one a minute
    my $lc = '/v1/acct/lim/openai/chat/completions';
    push @r, gw($lc, chat('gpt-4o-mini'), 'x-mock' => $TEXT);
    push @r, gw($lc, chat('gpt-4o-mini'), 'x-mock' => $TEXT);

    is(join(' ', map { $_->{status} } @r),
       '200 200 200 200 500 400 200 200 200 200 429',
       "$n - the statuses");
    is($r[3]{headers}{'cf-aig-cache-status'}, 'HIT', "$n - 4 is a HIT");

    my $j = metrics_json(11);
    is(keys_of($j), join("\n",
        'cache|openai|gpt-4o||2xx|false',
        'cache|openai|gpt-4o||2xx|true',
        'gw|anthropic|claude-3-5-sonnet-20241022||2xx|false',
        'gw|nope|||4xx|false',
        'gw|openai|gpt-4o-mini||2xx|false',
        'gw|openai|gpt-4o-mini||5xx|false',
        'lim|openai|gpt-4o-mini||2xx|false',
        'lim|openai|gpt-4o-mini||4xx|false'), "$n - the series");

    # requests hits misses in out cached reasoning retries fallbacks rate
    # spend cost
    my $ok = series($j, 'gw|openai|gpt-4o-mini||2xx|false');
    is(counters($ok), '4 0 0 ' . (16 + 14 + 16 + 16) . ' '
                      . (363 + 30 + 363 + 363) . ' 0 0 1 1 0 0 '
                      . logged_cost('gw', 'openai', 200),
       "$n - gw 2xx: four requests, their tokens, a retry, a fallback");
    is(errors($ok), '{}', "$n - gw 2xx: no error");
    # the slow one alone past 1 s; none past 2.5 s, even under valgrind
    for my $hn (qw(ai_gateway_time_to_first_byte_seconds
                   ai_gateway_request_duration_seconds))
    {
        my $h = $ok->{$hn};
        # valgrind (on a busy machine) slows everything down, the slow
        # one too: exact buckets without it; with it, the three within 1 s
        # for the first bytes
        if (!$ENV{TEST_NGINX_USE_VALGRIND}) {
            is(join(' ', map { $h->{buckets}{$_} } qw(1 2.5 120 +Inf)),
               '3 4 4 4',
               "$n - gw 2xx: $hn: three within 1 s, one within 2.5");
        } elsif ($hn eq 'ai_gateway_time_to_first_byte_seconds') {
            is(join(' ', map { $h->{buckets}{$_} } qw(1 120 +Inf)),
               '3 4 4', "$n - gw 2xx: $hn: three within 1 s (valgrind)");
        }
        is($h->{count}, 4, "$n - gw 2xx: $hn: the count");
        ok($h->{sum} >= 1.5 && $h->{sum} < 30,
           "$n - gw 2xx: $hn: the sum holds the 1.5 s one ($h->{sum})");

        # cumulative: never less than the bucket before, +Inf the count
        my @b = map { $h->{buckets}{$_} }
                qw(0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120
                   +Inf);
        my $mono = 1;
        $b[$_] >= $b[$_ - 1] or $mono = 0 for 1 .. $#b;
        ok($mono && $b[-1] == $h->{count},
           "$n - gw 2xx: $hn: the buckets are cumulative");
    }

    my $fail = series($j, 'gw|openai|gpt-4o-mini||5xx|false');
    is(counters($fail), '1 0 0 0 0 0 0 0 0 0 0 0',
       "$n - gw 5xx: one request, nothing used");
    is(errors($fail), '{}', "$n - gw 5xx: the provider's, no gateway code");
    is($fail->{ai_gateway_time_to_first_byte_seconds}{count}, 1,
       "$n - gw 5xx: its first byte");

    my $bad = series($j, 'gw|nope|||4xx|false');
    is(counters($bad), '1 0 0 0 0 0 0 0 0 0 0 0',
       "$n - gw 4xx: one request");
    is(errors($bad), '{"2008":1}', "$n - gw 4xx: code 2008");
    is($bad->{ai_gateway_time_to_first_byte_seconds}{count}, 0,
       "$n - gw 4xx: no first byte");
    is($bad->{ai_gateway_request_duration_seconds}{count}, 1,
       "$n - gw 4xx: a duration");

    is(counters(series($j, 'cache|openai|gpt-4o||2xx|false')),
       '1 0 1 16 363 0 0 0 0 0 0 ' . logged_cost('cache', 'openai', 200),
       "$n - cache: the miss");
    my $hit = series($j, 'cache|openai|gpt-4o||2xx|true');
    is(join(' ', (split / /, counters($hit))[0 .. 2]), '1 1 0',
       "$n - cache: the hit");
    is($hit->{ai_gateway_time_to_first_byte_seconds}{count}, 0,
       "$n - cache: no first byte from a provider for the hit");

    is(counters(series($j,
                'gw|anthropic|claude-3-5-sonnet-20241022||2xx|false')),
       '1 0 0 2584 150 2048 0 0 0 0 0 4856400',
       "$n - compat: translated, counted, priced");

    is(counters(series($j, 'lim|openai|gpt-4o-mini||4xx|false')),
       '1 0 0 0 0 0 0 0 0 1 0 0', "$n - lim: one rate limited");
    is(errors(series($j, 'lim|openai|gpt-4o-mini||4xx|false')),
       '{"2003":1}', "$n - lim: code 2003");

    is(join(' ', map { $j->{$_} } qw(series_in_use series_limit
                                     series_refused otel_spans_exported
                                     otel_spans_dropped)),
       '8 1000 0 0 0', "$n - the gateway-wide numbers");

    # the text form: the same numbers
    my $t = text();
    my $l = 'gateway="gw",provider="openai",model="gpt-4o-mini",client="",'
          . 'status="2xx",cached="false"';
    like($t, qr/^ai_gateway_requests_total\{\Q$l\E\} 4$/m,
         "$n - text: requests");
    like($t, qr/^ai_gateway_output_tokens_total\{\Q$l\E\} 1119$/m,
         "$n - text: tokens out");
    like($t, qr/^ai_gateway_time_to_first_byte_seconds_bucket\{\Q$l\E,le="1"\} 3$/m,
         "$n - text: a bucket");
    like($t, qr/^ai_gateway_time_to_first_byte_seconds_bucket\{\Q$l\E,le="\+Inf"\} 4$/m,
         "$n - text: +Inf");
    like($t, qr/^ai_gateway_time_to_first_byte_seconds_count\{\Q$l\E\} 4$/m,
         "$n - text: the count");
    like($t, qr/^ai_gateway_errors_total\{gateway="lim",provider="openai",model="gpt-4o-mini",client="",status="4xx",cached="false",code="2003"\} 1$/m,
         "$n - text: an error by code");
    like($t, qr/^ai_gateway_cost_usd_total\{gateway="gw",provider="anthropic",model="claude-3-5-sonnet-20241022",client="",status="2xx",cached="false"\} 0\.004856400$/m,
         "$n - text: the cost in dollars");
    like($t, qr/^# TYPE ai_gateway_request_duration_seconds histogram$/m,
         "$n - text: a histogram's TYPE");

    # the JSON form asked for with Accept
    my $r = $HT->get(url('/metrics'),
                     { headers => { accept => 'application/json' } });
    is($r->{headers}{'content-type'}, 'application/json',
       "$n - Accept: application/json");
    $r = $HT->get(url('/metrics'));
    is($r->{headers}{'content-type'},
       'text/plain; version=0.0.4; charset=utf-8', "$n - the text form");
    $r = $HT->request('POST', url('/metrics'), { content => 'x' });
    is($r->{status}, 405, "$n - POST is not allowed");
};

# max_series=3: the fourth combination on goes to the overflow series

$scenario{'series bound'} = sub {
    my $n = shift;
    my $c = '/v1/acct/gw/openai/chat/completions';
    my @s = map { gw($c, chat("m$_"), 'x-mock' => $TEXT)->{status} } 1 .. 10;
    is("@s", join(' ', (200) x 10), "$n - ten models answered");

    # which three got a series depends on the order the two workers
    # record them in
    my $j = metrics_json(10);
    my @own = map { $_->{labels}{model} }
              grep { $_->{labels}{model} =~ /^m\d+$/ } @{ $j->{series} };
    is(scalar @own, 3, "$n - three series of their own");

    gw($c, chat($own[0]), 'x-mock' => $TEXT);
    gw($c, chat('m11'), 'x-mock' => 'status=500');

    $j = metrics_json(12);
    is(keys_of($j), join("\n",
        '__overflow__|__overflow__|__overflow__|__overflow__|2xx|false',
        '__overflow__|__overflow__|__overflow__|__overflow__|5xx|false',
        sort map { "gw|openai|$_||2xx|false" } @own),
       "$n - three series and the overflow");
    is(series($j, "gw|openai|$own[0]||2xx|false")
           ->{ai_gateway_requests_total},
       2, "$n - a known combination keeps its series");
    my $o = series($j,
        '__overflow__|__overflow__|__overflow__|__overflow__|2xx|false');
    is(counters($o), '7 0 0 112 2541 0 0 0 0 0 0 '
                     . 7 * 146800,
       "$n - the overflow series counts the seven others");
    is(join(' ', map { $j->{$_} } qw(series_in_use series_limit
                                     series_refused)),
       '3 3 8', "$n - in use, the limit, eight requests refused a series");

    my $t = text();
    like($t, qr/^ai_gateway_requests_total\{gateway="__overflow__",provider="__overflow__",model="__overflow__",client="__overflow__",status="2xx",cached="false"\} 7$/m,
         "$n - text: the overflow series");
    like($t, qr/^ai_gateway_metrics_series_refused_total 8$/m,
         "$n - text: the refused counter");
    like($t, qr/^ai_gateway_metrics_series_limit 3$/m, "$n - text: the limit");
};

# label values cut and made printable; the client's name; a location with
# metrics off

$scenario{'labels and clients'} = sub {
    my $n = shift;
    my $c = '/v1/acct/gw/openai/chat/completions';
    my %alice = ('cf-aig-authorization' => "Bearer $main::ALICE");
    gw($c, chat('x' x 300), 'x-mock' => $TEXT, %alice);
    gw($c, chat("caf\x{e9}\"\\\n"), 'x-mock' => $TEXT, %alice);
    gw($c, chat('gpt-4o-mini'), 'x-mock' => $TEXT,
       'cf-aig-authorization' => "Bearer $main::BOB");
    is(gw($c, chat('gpt-4o-mini'))->{status}, 401, "$n - no token: 401");
    is(gw('/off/v1/acct/gw/openai/chat/completions', chat('gpt-4o-mini'),
          'x-mock' => $TEXT, %alice)->{status}, 200,
       "$n - metrics off: answered");

    my $j = metrics_json(4);
    is(keys_of($j), join("\n", sort
        'gw|openai|' . ('x' x 64) . '|alice|2xx|false',
        "gw|openai|caf__\"\\_|alice|2xx|false",
        'gw|openai|gpt-4o-mini|bob|2xx|false',
        'gw||||4xx|false'), "$n - the series: cut, printable, by client");
    is(errors(series($j, 'gw||||4xx|false')), '{"2009":1}',
       "$n - the 401: code 2009");
    like(text(), qr/^ai_gateway_requests_total\{gateway="gw",provider="openai",model="caf__\\"\\\\_",client="alice",status="2xx",cached="false"\} 1$/m,
         "$n - text: escaped");
};

# the zone survives a reload; a new layout (max_series changed) starts
# from zero, and says so

$scenario{'reload'} = sub {
    my $n = shift;
    my $c = '/v1/acct/gw/openai/chat/completions';
    my $root = $ENV{TEST_NGINX_SERVER_ROOT};
    my $wait = $ENV{TEST_NGINX_USE_VALGRIND} ? 4 : 1.5;

    gw($c, chat('gpt-4o-mini'), 'x-mock' => $TEXT) for 1 .. 3;

    # a request is counted once all its numbers are in, but the endpoint
    # may read a series while another worker is writing it: the numbers
    # are taken once two readings agree
    my $before = metrics_json(3);
    for (1 .. 20) {
        select undef, undef, undef, $wait / 10;
        my $again = metrics_json(3);
        last if $J->encode($again) eq $J->encode($before);
        $before = $again;
    }
    is(counters(series($before, 'gw|openai|gpt-4o-mini||2xx|false')),
       '3 0 0 48 1089 0 0 0 0 0 0 ' . 3 * 146800, "$n - three requests");

    open my $fh, '<', "$root/logs/nginx.pid" or die "nginx.pid: $!";
    chomp(my $master = <$fh>);
    close $fh;

    kill 'HUP', $master;
    sleep $wait;

    my $after = metrics_json();
    is($J->encode($after), $J->encode($before), "$n - the same numbers");

    gw($c, chat('gpt-4o-mini'), 'x-mock' => $TEXT);
    $after = metrics_json(4);
    is(series($after, 'gw|openai|gpt-4o-mini||2xx|false')
           ->{ai_gateway_requests_total}, 4, "$n - and added to");

    # the same zone size, another max_series: another layout

    my $conf = "$root/conf/nginx.conf";
    open $fh, '<', $conf or die "$conf: $!";
    my $text = do { local $/; <$fh> };
    close $fh;
    $text =~ s/max_series=50/max_series=60/ or die "no max_series=50";
    open $fh, '>', $conf or die "$conf: $!";
    print $fh $text;
    close $fh;

    kill 'HUP', $master;
    sleep $wait;

    $after = metrics_json();
    is(scalar @{ $after->{series} } . " $after->{series_limit}", '0 60',
       "$n - a new layout starts from zero");

    open $fh, '<', "$root/logs/error.log" or die "error.log: $!";
    my $log = do { local $/; <$fh> };
    close $fh;
    like($log, qr/ai_gateway_metrics_zone "metrics": the layout changed, the metrics start from zero/,
         "$n - and says so");
};

# spend limits refuse with code 2045

$scenario{'spend limited'} = sub {
    my $n = shift;
    my $c = '/v1/acct/gw/openai/chat/completions';
    my @s;
    for (1 .. 4) {
        push @s, gw($c, chat('gpt-4o-mini'), 'x-mock' => $TEXT)->{status};
        sleep($ENV{TEST_NGINX_USE_VALGRIND} ? 1 : 0.2);
    }
    is("@s", '200 200 200 429', "$n - the fourth is refused");
    my $j = metrics_json(4);
    my $r = series($j, 'gw|openai|gpt-4o-mini||4xx|false');
    is(counters($r), '1 0 0 0 0 0 0 0 0 0 1 0', "$n - one spend limited");
    is(errors($r), '{"2045":1}', "$n - code 2045");
};

run_tests();

__DATA__

=== TEST 1: scripted mix
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    $TEST_NGINX_TLS_CONFIG
    ai_gateway_retry_delay 0;
    ai_gateway_metrics metrics;
}
location /v1/acct/cache/ {
    ai_gateway cache;
    $TEST_NGINX_TLS_CONFIG
    ai_gateway_cache aic;
    ai_gateway_cache_ttl 60;
    ai_gateway_metrics metrics;
}
location /v1/acct/lim/ {
    ai_gateway lim;
    $TEST_NGINX_TLS_CONFIG
    ai_gateway_limit zone=limits requests=1 interval=1m;
    ai_gateway_metrics metrics;
}
location = /metrics {
    ai_gateway_metrics_endpoint;
}



=== TEST 2: series bound
--- http_config
ai_gateway_metrics_zone metrics:1m max_series=3;
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    $TEST_NGINX_TLS_CONFIG
    ai_gateway_metrics metrics;
}
location = /metrics {
    ai_gateway_metrics_endpoint metrics;
}



=== TEST 3: labels and clients
--- user_files eval
">>> tokens\n$main::TOKENS"
--- config
location = /ping { return 200 ok; }
ai_gateway_metrics metrics;
location /v1/ {
    ai_gateway gw;
    $TEST_NGINX_TLS_CONFIG
    ai_gateway_auth_token_file $TEST_NGINX_HTML_DIR/tokens;
}
location /off/ {
    rewrite ^/off(/.*)$ $1 break;
    ai_gateway gw;
    $TEST_NGINX_TLS_CONFIG
    ai_gateway_auth_token_file $TEST_NGINX_HTML_DIR/tokens;
    ai_gateway_metrics off;
}
location = /metrics {
    ai_gateway_metrics_endpoint;
}



=== TEST 4: reload
--- http_config
ai_gateway_metrics_zone metrics:2m max_series=50;
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    $TEST_NGINX_TLS_CONFIG
    ai_gateway_metrics metrics;
}
location = /metrics {
    ai_gateway_metrics_endpoint;
}



=== TEST 5: spend limited
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    $TEST_NGINX_TLS_CONFIG
    ai_gateway_limit zone=limits cost=0.0003 interval=3600s name=budget;
    ai_gateway_metrics metrics;
}
location = /metrics {
    ai_gateway_metrics_endpoint;
}



=== TEST 6: a zone too small for its max_series
--- http_config
ai_gateway_metrics_zone metrics:64k max_series=100;
--- config
location = /ping { return 200 ok; }
--- must_die
--- error_log eval
qr/zone "metrics" is too small for max_series=100: it needs at least \d+k/



=== TEST 7: max_series out of bounds
--- http_config
ai_gateway_metrics_zone metrics:1m max_series=0;
--- config
location = /ping { return 200 ok; }
--- must_die
--- error_log
invalid "max_series=0": from 1 to 100000



=== TEST 8: an endpoint without a zone
--- http_config
# none
--- config
location = /ping { return 200 ok; }
location = /metrics { ai_gateway_metrics_endpoint; }
--- must_die
--- error_log
"ai_gateway_metrics_endpoint" needs an "ai_gateway_metrics_zone"



=== TEST 9: metrics to a zone never declared
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_metrics nosuchzone;
}
--- must_die
--- error_log eval
qr/unknown zone "nosuchzone" in "ai_gateway_metrics" directive in \S+nginx.conf:\d+, it must be declared with "ai_gateway_metrics_zone nosuchzone:size" in http\{\}/



=== TEST 10: an endpoint's zone never declared
--- config
location = /ping { return 200 ok; }
location = /metrics { ai_gateway_metrics_endpoint other; }
--- must_die
--- error_log eval
qr/unknown zone "other" in "ai_gateway_metrics_endpoint" directive in \S+nginx.conf:\d+, it must be declared/
