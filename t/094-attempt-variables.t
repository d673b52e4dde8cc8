# Copyright (C) ngx_ai_gateway contributors

# Every $ai_gateway_* variable, logged through access_log, means the same
# thing whether a request runs directly or as attempts (retries, a request
# timeout, a Universal Endpoint step, a Universal Endpoint fallback): for
# the same outcome (success, a provider 5xx, a timeout, 2001, 2008, a
# connection refused) each mode logs what a direct request logs, except the
# variables that describe the attempts themselves ($ai_gateway_attempts,
# _attempt_statuses, _attempt_times, _step), checked on their own.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);
my $J = JSON::PP->new->canonical;

# the variables, in the order of the log format
my @VARS = qw(id account_id provider model upstream_status ttfb upstream_url
              error_code cache_status cache_key tls_name log_id event_id
              tokens_in tokens_out tokens_cached tokens_cache_write
              tokens_reasoning usage_partial cost custom_cost cached metadata
              attempts attempt_statuses attempt_times step);

my $FORMAT = join '|', '$http_x_case', '$status',
                       map { "\$ai_gateway_$_" } @VARS;

# the variables that describe the attempts, not the request's outcome
my %ATTEMPT = map { $_ => 1 } qw(attempts attempt_statuses attempt_times step);

my $BODY = { model => 'gpt-4o', q => 'variables' };

# outcome => [path prefix, provider, x-mock directives, body, headers]
my %OUTCOME = (
    'success'          => ['/v1/acct/gw', 'openai', ''],
    'success with usage' => ['/v1/acct/gw', 'openai',
                             'fixture=openai-chat/text.json'],
    'provider 5xx'     => ['/v1/acct/gw', 'openai', 'status=503'],
    'timeout'          => ['/v1/acct/gw', 'openai', 'hang=1'],
    '2001'             => ['/v1/acct/other', 'openai', ''],
    '2008'             => ['/v1/acct/gw', 'nope', ''],
    'connect failure'  => ['/v1/acct/gw', 'custom-down', ''],
    'Unified API'      => ['/v1/acct/gw', 'compat', '',
                           { model => 'openai/gpt-4o-mini',
                             messages => [ { role => 'user',
                                             content => 'hi' } ] },
                           { authorization => 'Bearer sk-test' }],
);

# one request of an outcome in a mode; the access log line it left
sub run_case {
    my ($mode, $outcome) = @_;
    my ($base, $provider, $mock, $query, $own) = @{ $OUTCOME{$outcome} };
    my $case = "$mode/$outcome";
    my $timeout = $outcome eq 'timeout';
    my %h = ('content-type' => 'application/json', 'x-case' => $case,
             'cf-aig-cache-ttl' => 60, 'cf-aig-skip-cache' => 'true',
             'cf-aig-metadata' => '{"case":"' . $case . '"}');
    my ($path, $body);

    $query //= $BODY;
    $own //= {};

    if ($mode =~ /^Universal/) {
        my %step = (provider => $provider, endpoint => 'chat/completions',
                    headers => { %$own,
                                 length $mock ? ('x-mock' => $mock) : () },
                    query => $query);
        $step{config} = { requestTimeout => 300 } if $timeout;
        my @steps = (\%step);
        unshift @steps, { provider => 'openai', endpoint => 'chat/completions',
                          headers => { 'x-mock' => 'status=500' },
                          query => { model => 'gpt-4o', q => 'failing' } }
            if $mode eq 'Universal fallback';
        ($path, $body) = ($base, $J->encode(\@steps));

    } else {
        ($path, $body) = ("$base/$provider/chat/completions",
                          $J->encode($query));
        %h = (%h, %$own);
        $h{'x-mock'} = $mock if length $mock;
        $h{'cf-aig-max-attempts'} = 2 if $mode eq 'retries';
        $h{'cf-aig-request-timeout'} = $timeout ? 300 : 5000
            if $mode eq 'request timeout';
    }

    my $r = $HT->request('POST',
                         "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
                         { headers => \%h, content => $body });

    return ($r, log_line($case));
}

# the access log line of a case, once it is written
sub log_line {
    my $case = shift;
    my $file = "$ENV{TEST_NGINX_SERVER_ROOT}/logs/vars.log";
    my $t = time;

    while (time < $t + 3) {
        if (open my $fh, '<', $file) {
            for my $line (<$fh>) {
                chomp $line;
                my @f = split /\|/, $line, -1;
                next unless $f[0] eq $case;
                my %v = (status => $f[1]);
                @v{@VARS} = @f[2 .. $#f];
                return \%v;
            }
        }
        sleep 0.05;
    }

    return {};
}

# what differs between two requests of the same outcome whatever the mode
sub normalize {
    my %v = %{ $_[0] };
    $v{log_id} = $v{log_id} =~ /^[0-9A-HJKMNP-TV-Z]{26}$/ ? 'ULID' : $v{log_id};
    $v{event_id} = $v{event_id} =~ /^[0-9a-f-]{36}$/ ? 'UUID' : $v{event_id};
    $v{ttfb} = $v{ttfb} =~ /^\d+\.\d{3}$/ ? 'S.MMM' : $v{ttfb};
    $v{attempt_times} =~ s/\d+/N/g;
    $v{metadata} =~ s/"case":"[^"]*"/"case":"C"/;
    return \%v;
}

# the attempts' variables expected, per mode and outcome
my %ATTEMPTS = (
    'direct' => {
        map { $_ => ['1', '', '', '0'] } keys %OUTCOME },
    'retries' => {
        'success with usage' => ['1', '200', 'N', '0'],
        'success'         => ['1', '200', 'N', '0'],
        'provider 5xx'    => ['2', '503, 503', 'N, N', '0'],
        'timeout'         => ['2', '504, 504', 'N, N', '0'],
        '2001'            => ['1', '400', 'N', '0'],
        '2008'            => ['1', '400', 'N', '0'],
        'connect failure' => ['2', '502, 502', 'N, N', '0'],
        'Unified API'     => ['1', '200', 'N', '0'] },
    'request timeout' => {
        'success with usage' => ['1', '200', 'N', '0'],
        'success'         => ['1', '200', 'N', '0'],
        'provider 5xx'    => ['1', '503', 'N', '0'],
        'timeout'         => ['1', '504', 'N', '0'],
        '2001'            => ['1', '400', 'N', '0'],
        '2008'            => ['1', '400', 'N', '0'],
        'connect failure' => ['1', '502', 'N', '0'],
        'Unified API'     => ['1', '200', 'N', '0'] },
    'Universal step' => {
        'success with usage' => ['1', '200', 'N', '0'],
        'success'         => ['1', '200', 'N', '0'],
        'provider 5xx'    => ['1', '503', 'N', '0'],
        'timeout'         => ['1', '504', 'N', '0'],
        '2001'            => ['1', '', '', '0'],
        '2008'            => ['1', '', '', '0'],
        'connect failure' => ['1', '502', 'N', '0'],
        'Unified API'     => ['1', '200', 'N', '0'] },
    'Universal fallback' => {
        'success with usage' => ['2', '500, 200', 'N, N', '1'],
        'success'         => ['2', '500, 200', 'N, N', '1'],
        'provider 5xx'    => ['2', '500, 503', 'N, N', '1'],
        'timeout'         => ['2', '500, 504', 'N, N', '1'],
        '2001'            => ['1', '', '', '0'],
        '2008'            => ['1', '', '', '0'],
        'connect failure' => ['2', '500, 502', 'N, N', '1'],
        'Unified API'     => ['2', '500, 200', 'N, N', '1'] },
);

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<END);
    log_format vars escape=none '$FORMAT';
    ai_gateway_cache_zone aic:1m;
END

    $block->set_value("config", <<END);
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider custom-down http://127.0.0.1:1;
        ai_gateway_cache aic;
        ai_gateway_retry_delay 0;
        ai_gateway_read_timeout 1s;
        ai_gateway_max_body_size 1k;
        access_log logs/vars.log vars;
    }
END

    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");
    $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
});

# a body over ai_gateway_max_body_size: refused by the gateway once the
# request is routed when its Content-Length says so, and while it is read
# when it is chunked; a request with attempts reads its body before
# routing it (the documented difference)

sub body_too_large {
    my $big = $J->encode({ model => 'gpt-4o', q => 'x' x 2000 });
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
              . "/v1/acct/gw/openai/chat/completions";
    my $routed = "gw|acct|openai|http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}"
                 . "/v1/chat/completions|2202";

    for my $c (['direct', {}, 0, $routed],
               ['retries', { 'cf-aig-max-attempts' => 2 }, 0, '||||2202'],
               ['direct', {}, 1, $routed],
               ['retries', { 'cf-aig-max-attempts' => 2 }, 1, '||||2202'])
    {
        my ($mode, $h, $chunked, $want) = @$c;
        my $case = "$mode/413" . ($chunked ? ' chunked' : '');
        my $sent = 0;
        my $r = $HT->request('POST', $url, {
            headers => { 'content-type' => 'application/json',
                         'x-case' => $case, %$h },
            content => $chunked ? sub { $sent++ ? undef : $big } : $big });
        is($r->{status}, 413, "$case: 413");
        my $v = log_line($case);
        is(join('|', map { $v->{$_} } qw(id account_id provider upstream_url
                                          error_code)),
           $want, "$case: what is known when the body is refused");
    }
}

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;

    my ($outcome) = $block->name =~ /: (.*)$/;

    return body_too_large() if $outcome eq 'body too large';

    my ($dr, $direct) = run_case('direct', $outcome);
    ok(scalar keys %$direct, "$outcome - direct: logged");

    my $want = normalize($direct);

    if ($outcome eq 'success with usage') {
        is(join('|', map { $want->{$_} } qw(tokens_in tokens_out cost
                                              cached usage_partial metadata)),
           '16|363|0.0001468|false|false|{"case":"C"}',
           "$outcome - direct: the counts, the cost, the metadata");
    }

    for my $mode ('direct', 'retries', 'request timeout', 'Universal step',
                  'Universal fallback')
    {
        my ($r, $got) = $mode eq 'direct' ? ($dr, $direct)
                                          : run_case($mode, $outcome);
        my $n = "$outcome - $mode";

        is($r->{status}, $dr->{status}, "$n: the response's status");
        is(json_code($r), json_code($dr), "$n: the response's error code");

        $got = normalize($got);

        for my $k ('status', grep { !$ATTEMPT{$_} } @VARS) {
            is($got->{$k}, $want->{$k}, "$n: \$ai_gateway_$k as direct")
                unless $k eq 'status';
            is($got->{$k}, $want->{$k}, "$n: \$status as direct")
                if $k eq 'status';
        }

        is(join('|', map { $got->{$_} } qw(attempts attempt_statuses
                                           attempt_times step)),
           join('|', @{ $ATTEMPTS{$mode}{$outcome} }),
           "$n: attempts, statuses, times, step");
    }
});

sub json_code {
    my $r = shift;
    my $j = eval { json_decode($r->{content}) } or return '';
    return ref $j->{error} eq 'ARRAY' ? $j->{error}[0]{code} // '' : '';
}

run_tests();

__DATA__

=== TEST 1: success

=== TEST 2: success with usage

=== TEST 3: provider 5xx

=== TEST 4: timeout

=== TEST 5: 2001

=== TEST 6: 2008

=== TEST 7: connect failure

=== TEST 8: Unified API

=== TEST 9: body too large
