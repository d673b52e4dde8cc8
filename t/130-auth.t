# Copyright (C) ngx_ai_gateway contributors

# The authenticated gateway: every case of the hosted gateway's table
# (authentication on or off, the header there or not), the 401 envelope,
# token files with plain tokens and SHA-256 digests, names as the client
# identity ($ai_gateway_client, the log record), rotation by reload, no
# cached answer and no attempt or Universal Endpoint step without the
# token, and the token never sent to the provider nor written to a log.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time sleep);

repeat_each(1);
master_on();
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);
my $J = JSON::PP->new->utf8->canonical;
my $CASE = 0;

our $ALICE = 'cfat_alice_Zx81kq0aa7';
our $BOB = 'cfat_bob_Qp55zz19b2';        # on disk as its digest only
our $ANON = 'cfat_anon_W00t77c3d';       # no name
our $NEW = 'cfat_rotated_Hh21ii90';

our $TOKENS = "# gateway tokens\n$ALICE alice\n\nsha256:"
              . sha256_hex($BOB) . "  bob\r\n   $ANON\n";

my $CHAT = '/v1/acct/gw/openai/chat/completions';
my $BODY = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}';

my $UNAUTHORIZED = '{"success":false,"result":[],"messages":[],'
    . '"error":[{"code":2009,"message":"Unauthorized"}],'
    . '"name":"AiGatewayError","httpCode":401,"internalCode":2009,'
    . '"message":"Unauthorized"';

# one request; its response and its access log line
sub req {
    my ($path, $body, %h) = @_;
    my $case = 'c' . ++$CASE;
    my $method = delete $h{method} // 'POST';

    my $r = $HT->request($method,
                         "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
                         { headers => { 'content-type' => 'application/json',
                                        'x-case' => $case, %h },
                           defined $body ? (content => $body) : () });

    my $file = "$ENV{TEST_NGINX_SERVER_ROOT}/logs/auth.log";
    my $t = time;

    while (time < $t + 5) {
        if (open my $fh, '<', $file) {
            for my $line (<$fh>) {
                chomp $line;
                my $j = eval { $J->decode($line) } or next;
                return ($r, $j) if $j->{case} eq $case;
            }
        }
        sleep 0.05;
    }

    return ($r, {});
}

sub calls { scalar @{ mock_log()->{requests} } }

sub echo { eval { $J->decode($_[0]{content}) } // {} }

# the records, or those whose $key is $value
sub logs_api {
    my ($key, $value) = @_;
    my $q = 'per_page=50';
    if (defined $key) {
        my $f = $J->encode([ { key => $key, operator => 'eq',
                               value => [ $value ] } ]);
        $f =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
        $q .= "&filters=$f";
    }
    my $r = $HT->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
                     . "/client/v4/accounts/acct/ai-gateway/gateways/gw/logs"
                     . "?$q");
    my $j = eval { $J->decode($r->{content}) } // {};
    return $j->{result} // [];
}

sub slurp {
    my $f = shift;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh>;
}

sub reload {
    my $pid = slurp("$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid");
    chomp $pid;
    kill 'HUP', $pid or die "HUP: $!";
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'END');
    log_format auth escape=json '{"case":"$http_x_case","status":$status,"client":"$ai_gateway_client","code":"$ai_gateway_error_code","cache":"$ai_gateway_cache_status","attempts":"$ai_gateway_attempts","step":"$ai_gateway_step"}';
    ai_gateway_cache_zone aic:1m;
    ai_gateway_log_zone logs:1m;
END

    $block->set_value("config", <<'END') unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/acct/gw {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_auth_token_file $TEST_NGINX_HTML_DIR/tokens;
        ai_gateway_logs logs;
        access_log logs/auth.log auth;
    }
    location /v1/acct/cached/ {
        ai_gateway cached account=acct;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_auth_token_file $TEST_NGINX_HTML_DIR/tokens;
        ai_gateway_cache aic;
        ai_gateway_cache_ttl 60;
        access_log logs/auth.log auth;
    }
    location /v1/acct/open {
        ai_gateway open account=acct;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        access_log logs/auth.log auth;
    }
    location ~ ^/v1/acct/open/anthropic/ {
        ai_gateway open account=acct;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_auth_token_file $TEST_NGINX_HTML_DIR/tokens;
        access_log logs/auth.log auth;
    }
    location /client/v4/ {
        ai_gateway_api;
    }
END

    $block->set_value("user_files", ">>> tokens\n$main::TOKENS")
        unless defined $block->user_files;

    unless (defined $block->request) {
        $block->set_value("request", "GET /ping");
        $block->set_value("response_body", "ok");
    }

    if (!defined $block->no_error_log && !defined $block->error_log
        && !defined $block->must_die)
    {
        $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
    }
});

my %scenario;

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    for my $k (sort keys %scenario) {
        if ($block->name =~ /\Q$k\E/) {
            mock_reset();
            $scenario{$k}->($block->name);
        }
    }
});

$scenario{'the table'} = sub {
    my $n = shift;

    # On, no header: 401 with the observed envelope, nothing sent

    my ($r, $l) = req($CHAT, $BODY);
    is($r->{status}, 401, "$n - on, no header: 401");
    is(substr($r->{content}, 0, length $UNAUTHORIZED), $UNAUTHORIZED,
       "$n - on, no header: the envelope");
    like($r->{headers}{'content-type'}, qr{^application/json},
         "$n - on, no header: JSON");
    ok($r->{headers}{'cf-aig-log-id'}, "$n - on, no header: a log id");
    is($l->{code}, '2009', "$n - on, no header: \$ai_gateway_error_code");
    is(calls(), 0, "$n - on, no header: the provider is not called");

    # On, the header with a token of the file

    for my $c ([ $ALICE, 'alice', 'a plain token with a name' ],
               [ $BOB, 'bob', 'a token stored as its digest' ],
               [ $ANON, '', 'a token without a name' ])
    {
        my ($tok, $who, $what) = @$c;
        mock_reset();
        ($r, $l) = req($CHAT, $BODY, 'cf-aig-authorization' => "Bearer $tok");
        is($r->{status}, 200, "$n - $what: 200");
        is($l->{client}, $who, "$n - $what: \$ai_gateway_client '$who'");
        my $e = echo($r);
        ok(!grep({ /^cf-aig/ } keys %{ $e->{headers} // { none => 1 } }),
           "$n - $what: no cf-aig-* header reaches the provider");
        unlike($r->{content}, qr/\Q$tok\E/,
               "$n - $what: the token is not sent to the provider");
    }

    ($r, $l) = req($CHAT, $BODY, 'cf-aig-authorization' => "bEaReR   $ALICE ");
    is($r->{status}, 200, "$n - the scheme in any case, blanks around");

    # On, the header with anything else: 401

    for my $c ([ "Bearer cfat_wrong", 'a wrong token' ],
               [ "Bearer ", 'an empty token' ],
               [ $ALICE, 'no scheme' ],
               [ "Basic $ALICE", 'another scheme' ],
               [ "Bearer " . sha256_hex($BOB), 'the digest as the token' ],
               [ "Bearer sha256:" . sha256_hex($BOB), 'the digest line' ],
               [ "Bearer ${ALICE}x", 'a longer token' ],
               [ "Bearer " . substr($ALICE, 0, -1), 'a shorter token' ],
               [ "Bearer alice", 'the name' ])
    {
        mock_reset();
        ($r, $l) = req($CHAT, $BODY, 'cf-aig-authorization' => $c->[0]);
        is($r->{status}, 401, "$n - $c->[1]: 401");
        is(calls(), 0, "$n - $c->[1]: the provider is not called");
    }

    # the gateway token in the provider's header: only with stored keys

    ($r, $l) = req($CHAT, $BODY, authorization => "Bearer $ALICE");
    is($r->{status}, 401, "$n - the token in Authorization, no stored "
                          . "keys: 401");

    # Off: succeeds with or without the header, which is not validated

    mock_reset();
    ($r, $l) = req('/v1/acct/open/openai/chat/completions', $BODY);
    is($r->{status}, 200, "$n - off, no header: 200");
    is($l->{client}, '', "$n - off: no client");
    ($r, $l) = req('/v1/acct/open/openai/chat/completions', $BODY,
                   'cf-aig-authorization' => 'Bearer anything');
    is($r->{status}, 200, "$n - off, a header: 200, not validated");
    ok(!exists echo($r)->{headers}{'cf-aig-authorization'},
       "$n - off: the header is not sent to the provider");

    # every other route of the gateway: /compat, the model list, Universal

    ($r) = req('/v1/acct/gw/compat/chat/completions',
               '{"model":"openai/gpt-4o","messages":[]}');
    is($r->{status}, 401, "$n - /compat: 401");
    ($r) = req('/v1/acct/gw/compat/models', undef, method => 'GET');
    is($r->{status}, 401, "$n - /compat/models: 401");
    ($r) = req('/v1/acct/gw', '[]');
    is($r->{status}, 401, "$n - Universal: 401");
    ($r) = req('/v1/acct/gw/nope/x', '{}');
    is($r->{status}, 401, "$n - an unknown provider: 401 first");

    # the refusal in the request's log record

    my @l = grep { $_->{status_code} == 401 } @{ logs_api() };
    ok(@l >= 1, "$n - refused requests have a log record");
    is($l[0]{success}, JSON::PP::false, "$n - the record: not a success");
    my $ok = grep { $_->{status_code} == 200 } @{ logs_api() };
    is(scalar @{ logs_api('authentication', JSON::PP::true) }, $ok,
       "$n - the records of authenticated requests say so");
    is(scalar @{ logs_api('authentication', JSON::PP::false) },
       scalar(@{ logs_api() }) - $ok,
       "$n - the others are not authenticated");

    # the token never in the access log nor in the error log

    my $log = slurp("$ENV{TEST_NGINX_SERVER_ROOT}/logs/auth.log");
    unlike($log, qr/\Q$ALICE\E|\Q$BOB\E|\Q$ANON\E/,
           "$n - no token in the access log");
    my $err = slurp("$ENV{TEST_NGINX_SERVER_ROOT}/logs/error.log");
    unlike($err, qr/\Q$ALICE\E|\Q$BOB\E|\Q$ANON\E/,
           "$n - no token in the error log at info");
    like($err, qr/gateway token in "cf-aig-authorization" is not one/,
         "$n - a wrong token is logged, at info");
};

$scenario{'attempts'} = sub {
    my $n = shift;

    # a request with retries or a timeout runs as attempts: none starts
    # without the token

    my ($r, $l) = req($CHAT, $BODY, 'cf-aig-max-attempts' => 3,
                      'x-mock' => 'status=500');
    is($r->{status}, 401, "$n - retries, no token: 401");
    is(calls(), 0, "$n - retries, no token: no attempt");

    ($r, $l) = req($CHAT, $BODY, 'cf-aig-request-timeout' => 5000);
    is($r->{status}, 401, "$n - a timeout, no token: 401");
    is(calls(), 0, "$n - a timeout, no token: no attempt");

    mock_reset();
    ($r, $l) = req($CHAT, $BODY, 'cf-aig-max-attempts' => 2,
                   'cf-aig-retry-delay' => 10,
                   'cf-aig-authorization' => "Bearer $ALICE");
    is($r->{status}, 200, "$n - retries with the token: 200");
    is($l->{client}, 'alice', "$n - retries: the request's client");

    # Universal Endpoint steps: none without the token; with it, each
    # step runs once, not authenticated again (steps carry no token)

    my $steps = $J->encode([
        { provider => 'openai', endpoint => 'chat/completions',
          headers => { 'x-mock' => 'status=500' },
          query => { model => 'gpt-4o' } },
        { provider => 'openai', endpoint => 'chat/completions',
          headers => {}, query => { model => 'gpt-4o' } },
    ]);

    mock_reset();
    ($r, $l) = req('/v1/acct/gw', $steps);
    is($r->{status}, 401, "$n - Universal, no token: 401");
    is(calls(), 0, "$n - Universal, no token: no step");

    ($r, $l) = req('/v1/acct/gw', $steps,
                   'cf-aig-authorization' => "Bearer cfat_wrong");
    is($r->{status}, 401, "$n - Universal, a wrong token: 401");

    ($r, $l) = req('/v1/acct/gw', $steps,
                   'cf-aig-authorization' => "Bearer $BOB");
    is($r->{status}, 200, "$n - Universal with the token: 200");
    is($r->{headers}{'cf-aig-step'}, '1', "$n - Universal: the fallback");
    is($l->{client}, 'bob', "$n - Universal: the request's client");
    is(calls(), 2, "$n - Universal: two steps, each once");

    # a step of an open gateway cannot reach a location that asks for a
    # token: nginx would place it there, it is refused (403, 2209)

    mock_reset();
    ($r) = req('/v1/acct/open/anthropic/v1/messages', '{}');
    is($r->{status}, 401, "$n - the authenticated location: 401");
    ($r, $l) = req('/v1/acct/open', $J->encode([
        { provider => 'anthropic', endpoint => 'v1/messages',
          headers => {}, query => { model => 'claude' } } ]));
    is($r->{status}, 403, "$n - a step into it from an open gateway: 403");
    like($r->{content}, qr/"code":2209/, "$n - code 2209");
    is(calls(), 0, "$n - the provider is not called");
};

$scenario{'cache'} = sub {
    my $n = shift;
    my $path = '/v1/acct/cached/openai/chat/completions';

    my ($r, $l) = req($path, $BODY, 'cf-aig-authorization' => "Bearer $ALICE");
    is($r->{status}, 200, "$n - first: 200");
    ($r, $l) = req($path, $BODY, 'cf-aig-authorization' => "Bearer $ALICE");
    is($r->{headers}{'cf-aig-cache-status'}, 'HIT', "$n - then a hit");

    ($r, $l) = req($path, $BODY);
    is($r->{status}, 401, "$n - no cached answer without the token");
    ($r, $l) = req($path, $BODY, 'cf-aig-authorization' => 'Bearer nope');
    is($r->{status}, 401, "$n - nor with a wrong one");

    # the cache key does not depend on the gateway token

    ($r, $l) = req($path, $BODY, 'cf-aig-authorization' => "Bearer $BOB");
    is($r->{headers}{'cf-aig-cache-status'}, 'HIT',
       "$n - another client's token: the same entry");
    is($l->{client}, 'bob', "$n - a hit has its client");
    is(calls(), 1, "$n - the provider was called once");
};

$scenario{'rotation'} = sub {
    my $n = shift;
    my $file = "$ENV{TEST_NGINX_HTML_DIR}/tokens";

    my ($r) = req($CHAT, $BODY, 'cf-aig-authorization' => "Bearer $ALICE");
    is($r->{status}, 200, "$n - the old token: 200");
    ($r) = req($CHAT, $BODY, 'cf-aig-authorization' => "Bearer $NEW");
    is($r->{status}, 401, "$n - the new token, before: 401");

    open my $fh, '>', $file or die "$file: $!";
    print $fh "$NEW rotated\nsha256:" . sha256_hex($BOB) . " bob\n";
    close $fh;
    reload();

    my $t = time;
    my $s = 0;
    while (time < $t + 10) {
        ($r) = req($CHAT, $BODY, 'cf-aig-authorization' => "Bearer $NEW");
        $s = $r->{status};
        last if $s == 200;
        sleep 0.2;
    }
    is($s, 200, "$n - after the reload, the new token: 200");

    my $l;
    ($r, $l) = req($CHAT, $BODY, 'cf-aig-authorization' => "Bearer $ALICE");
    is($r->{status}, 401, "$n - the old token: 401");
    ($r, $l) = req($CHAT, $BODY, 'cf-aig-authorization' => "Bearer $NEW");
    is($l->{client}, 'rotated', "$n - the new token's name");
    ($r) = req($CHAT, $BODY, 'cf-aig-authorization' => "Bearer $BOB");
    is($r->{status}, 200, "$n - a token kept: 200");
};

run_tests();

__DATA__

=== TEST 1: the table
--- log_level: info



=== TEST 2: attempts and steps



=== TEST 3: cache



=== TEST 4: rotation by reload



=== TEST 5: a line that is not a token: refused, the line not quoted
--- user_files
>>> tokens
cfat_good_1 good
cfat_secret_value bad:name
--- must_die
--- error_log
invalid line 2 in the gateway token file
--- no_error_log
cfat_secret_value



=== TEST 6: a digest line that is not one
--- user_files
>>> tokens
sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg
--- must_die
--- error_log
invalid line 1 in the gateway token file



=== TEST 7: a file without a token
--- user_files
>>> tokens
# only a comment

--- must_die
--- error_log
has no token



=== TEST 8: a file that is not there
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_auth_token_file /nonexistent/tokens;
}
--- must_die
--- error_log
cannot open the gateway token file
