# Copyright (C) ngx_ai_gateway contributors

# Stored provider keys (BYOK): keys read from files and the environment,
# put into each provider's own credential header on native routes, the
# Unified API, Universal Endpoint steps, a custom provider and Google
# Vertex AI (a service-account key exchanged for a token); aliases and
# the 2040 error; the gateway token in the provider's header; the
# client's own key and ai_gateway_client_keys; the cache keyed by the
# alias; no key or token in the access log, the error log at debug, the
# log store or the Redis cache.  The mock records what each provider
# request carried.

use lib 't/lib';
use AIGW::Test;
use AIGW::Redis;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);

repeat_each(1);
master_on();
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);
my $J = JSON::PP->new->utf8->canonical;
my $CASE = 0;

our $TOKEN = 'cfat_byok_client_Kq7Lm2';
our $OTHER = 'cfat_byok_other_Zz81Pp';
our %KEY = (
    openai => 'sk-stored-openai-default-111',
    batch => 'sk-stored-openai-batch-222',
    anthropic => 'sk-ant-stored-from-env-333',
    google => 'AIza-stored-studio-444',
    acme => 'acme-stored-custom-555',
    azure => 'azure-stored-666',
);
our $OWN = 'sk-client-own-key-999';

# the keys on disk, the service-account JSON over several lines

our $DIR = tempdir(CLEANUP => 1);
chmod 0755, $DIR;

sub put {
    my ($name, $text) = @_;
    open my $fh, '>', "$DIR/$name" or die "$DIR/$name: $!";
    print $fh $text;
    close $fh;
    chmod 0600, "$DIR/$name";
}

put('openai', "$KEY{openai}\n");
put('batch', "$KEY{batch}\r\n");
put('google', $KEY{google});
put('acme', "$KEY{acme}\n");
put('azure', "$KEY{azure}\n");
put('tokens', "$TOKEN client1\n$OTHER client2\n");
put('crlf', "sk-one\r\nX-Injected: yes\n");
put('nul', "sk-one\0two\n");
put('empty', "\n");

{
    open my $fh, '<', "$ENV{TEST_NGINX_CERT_DIR}/sa.key" or die "sa.key: $!";
    my $pem = do { local $/; <$fh> };
    put('vertex', JSON::PP->new->pretty->canonical->encode({
        type => 'service_account', project_id => 'byok-proj',
        private_key_id => 'kid-byok', private_key => $pem,
        client_email => 'byok@byok-proj.iam.gserviceaccount.com',
        token_uri => 'https://oauth2.googleapis.com/token',
        region => 'us-central1' }));
}

$ENV{AIGW_TEST_ANTHROPIC_KEY} = $KEY{anthropic};

# Redis, for the cache entries
our $REDIS_PORT = AIGW::Redis::redis_free_port();
our $REDIS_PID = AIGW::Redis::redis_start($REDIS_PORT);
END { AIGW::Redis::redis_stop($REDIS_PID) if $REDIS_PID }

my $CHAT = '/v1/acct/gw/openai/chat/completions';
my $BODY = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}';
my $CLAUDE = '{"model":"claude-sonnet-4-5","max_tokens":16,'
             . '"messages":[{"role":"user","content":"hi"}]}';

sub req {
    my ($path, $body, %h) = @_;
    my $case = 'k' . ++$CASE;

    my $r = $HT->request('POST',
                         "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
                         { headers => { 'content-type' => 'application/json',
                                        'x-case' => $case, %h },
                           content => $body });

    my $file = "$ENV{TEST_NGINX_SERVER_ROOT}/logs/byok.log";
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

# the provider requests of the mock (token exchanges left out)
sub calls { grep { !$_->{jwt} } @{ mock_log()->{requests} } }

sub exchanges { grep { $_->{jwt} } @{ mock_log()->{requests} } }

# the mock's log reset, what it saw kept
our @SEEN;
sub keep_reset { push @SEEN, @{ mock_log()->{requests} }; mock_reset() }

# the credential headers of the one provider request there was
sub cred {
    my @c = calls();
    return "calls: " . scalar @c if @c != 1;
    my $h = $c[0]{headers};
    return join ' ', map { "$_=" . ($h->{$_} // '-') }
        qw(authorization x-api-key x-goog-api-key api-key x-acme-key);
}

sub slurp {
    my $f = shift;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh>;
}

sub secrets { qr/\Q$KEY{openai}\E|\Q$KEY{batch}\E|\Q$KEY{anthropic}\E|\Q$KEY{google}\E|\Q$KEY{acme}\E|\Q$KEY{azure}\E|private_key|\Q$TOKEN\E|\Q$OTHER\E/ }

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", '$TEST_NGINX_PROVIDER_UPSTREAMS' . <<'END');

    log_format byok escape=json '{"case":"$http_x_case","status":$status,"client":"$ai_gateway_client","alias":"$ai_gateway_key_alias","code":"$ai_gateway_error_code","url":"$ai_gateway_upstream_url","key":"$ai_gateway_cache_key","cache":"$ai_gateway_cache_status"}';
    ai_gateway_log_zone logs:1m;
    ai_gateway_cache_zone aic:1m;
END

    my $keys = <<"END";
        ai_gateway_auth_token_file $DIR/tokens;
        ai_gateway_provider_key openai file=$DIR/openai;
        ai_gateway_provider_key openai file=$DIR/batch alias=batch;
        ai_gateway_provider_key anthropic env=AIGW_TEST_ANTHROPIC_KEY;
        ai_gateway_provider_key google-ai-studio file=$DIR/google;
        ai_gateway_provider_key custom-acme file=$DIR/acme;
        ai_gateway_provider_key azure-openai file=$DIR/azure;
        ai_gateway_provider_key google-vertex-ai file=$DIR/vertex;
        ai_gateway_provider custom-acme http://127.0.0.1:\$TEST_NGINX_MOCK_PORT/acme auth_header=x-acme-key;
        ai_gateway_read_timeout 5s;
        \$TEST_NGINX_TLS_CONFIG
        access_log logs/byok.log byok;
END

    $block->set_value("config", <<"END") unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/acct/gw {
        ai_gateway gw account=acct;
$keys
        ai_gateway_logs logs;
        ai_gateway_log_payload on;
    }
    location /v1/acct/own {
        ai_gateway own account=acct;
$keys
        ai_gateway_client_keys on;
    }
    location /v1/acct/shm {
        ai_gateway shm account=acct;
$keys
        ai_gateway_cache aic;
        ai_gateway_cache_ttl 60;
    }
    location /v1/acct/redis {
        ai_gateway redis account=acct;
$keys
        ai_gateway_cache_redis 127.0.0.1:$REDIS_PORT prefix=t131:;
        ai_gateway_cache_ttl 60;
    }
    location /client/v4/ {
        ai_gateway_api;
    }
END

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

my $GW = { 'cf-aig-authorization' => "Bearer $TOKEN" };

$scenario{'native'} = sub {
    my $n = shift;
    my ($r, $l);

    ($r, $l) = req($CHAT, $BODY, %$GW);
    is($r->{status}, 200, "$n - openai: 200");
    is(cred(), "authorization=Bearer $KEY{openai} x-api-key=- "
               . "x-goog-api-key=- api-key=- x-acme-key=-",
       "$n - openai: the default key as Bearer");
    is($l->{alias}, 'default', "$n - \$ai_gateway_key_alias");
    is($l->{client}, 'client1', "$n - \$ai_gateway_client");

    mock_reset();
    ($r, $l) = req($CHAT, '{"model":"gpt-4o","stream":true,"messages":[]}',
                   %$GW, 'x-mock' => 'fixture=openai-chat/stream-text-usage.sse');
    is($r->{status}, 200, "$n - streamed: 200");
    like($r->{content}, qr/data: \[DONE\]/, "$n - streamed: the stream");
    like(cred(), qr/^authorization=Bearer \Q$KEY{openai}\E /,
         "$n - streamed: the stored key");

    mock_reset();
    ($r, $l) = req($CHAT, $BODY, %$GW, 'cf-aig-byok-alias' => 'batch');
    like(cred(), qr/^authorization=Bearer \Q$KEY{batch}\E /,
         "$n - cf-aig-byok-alias picks another key");
    is($l->{alias}, 'batch', "$n - its alias");

    mock_reset();
    ($r, $l) = req($CHAT, $BODY, %$GW, 'cf-aig-byok-alias' => 'nope');
    is($r->{status}, 400, "$n - an unknown alias: 400");
    my $msg = "Provider 'openai' has no BYOK credential named 'nope'. "
              . "Configured aliases: 'default', 'batch'";
    is($r->{content}, '{"success":false,"result":[],"messages":[],'
       . '"error":[{"code":2040,"message":"' . $msg . '"}],'
       . '"name":"AiGatewayError","httpCode":400,"internalCode":2040,'
       . '"message":"' . $msg . '","description":"' . $msg . '"}',
       "$n - an unknown alias: the observed envelope");
    is(scalar calls(), 0, "$n - an unknown alias: no fallback, no call");

    ($r) = req($CHAT, $BODY, %$GW, 'cf-aig-byok-alias' => "a'b");
    is($r->{status}, 400, "$n - an alias that is not one: 400");
    unlike($r->{content}, qr/a'b/, "$n - and it is not echoed");

    # anthropic from the environment, in x-api-key

    mock_reset();
    ($r, $l) = req('/v1/acct/gw/anthropic/v1/messages', $CLAUDE, %$GW);
    is(cred(), "authorization=- x-api-key=$KEY{anthropic} x-goog-api-key=- "
               . "api-key=- x-acme-key=-",
       "$n - anthropic: the key of env= in x-api-key");

    mock_reset();
    ($r, $l) = req('/v1/acct/gw/google-ai-studio/v1beta/models/'
                   . 'gemini-2.5-flash:generateContent', '{}', %$GW);
    is(cred(), "authorization=- x-api-key=- x-goog-api-key=$KEY{google} "
               . "api-key=- x-acme-key=-",
       "$n - google-ai-studio: x-goog-api-key");

    mock_reset();
    ($r, $l) = req('/v1/acct/gw/azure-openai/myres/dep/chat/completions'
                   . '?api-version=2024-02-01', $BODY, %$GW);
    is(cred(), "authorization=- x-api-key=- x-goog-api-key=- "
               . "api-key=$KEY{azure} x-acme-key=-",
       "$n - azure-openai: api-key");

    mock_reset();
    ($r, $l) = req('/v1/acct/gw/custom-acme/v1/chat', $BODY, %$GW);
    is(cred(), "authorization=- x-api-key=- x-goog-api-key=- api-key=- "
               . "x-acme-key=$KEY{acme}",
       "$n - a custom provider: its auth_header");

    # a provider without a stored key: the client's own, as it is

    mock_reset();
    ($r, $l) = req('/v1/acct/gw/mistral/v1/chat/completions', $BODY, %$GW,
                   authorization => "Bearer $OWN");
    like(cred(), qr/^authorization=Bearer \Q$OWN\E /,
         "$n - no stored key: the client's key");
    is($l->{alias}, '', "$n - no stored key: no alias");

    ($r) = req('/v1/acct/gw/mistral/v1/chat/completions', $BODY, %$GW,
               'cf-aig-byok-alias' => 'default');
    like($r->{content}, qr/"code":2040,"message":"Provider 'mistral' has no BYOK credential named 'default'. Configured aliases: none"/,
         "$n - an alias asked of a provider without keys: 2040");
};

$scenario{'gateway token in the provider header'} = sub {
    my $n = shift;
    my ($r, $l);

    ($r, $l) = req($CHAT, $BODY, authorization => "Bearer $TOKEN");
    is($r->{status}, 200, "$n - Authorization: Bearer <gateway token>: 200");
    is($l->{client}, 'client1', "$n - the client");
    like(cred(), qr/^authorization=Bearer \Q$KEY{openai}\E /,
         "$n - replaced by the stored key");

    keep_reset();
    ($r, $l) = req('/v1/acct/gw/anthropic/v1/messages', $CLAUDE,
                   'x-api-key' => $OTHER);
    is($l->{client}, 'client2', "$n - x-api-key: the client");
    is(cred(), "authorization=- x-api-key=$KEY{anthropic} x-goog-api-key=- "
               . "api-key=- x-acme-key=-", "$n - x-api-key replaced");

    keep_reset();
    ($r, $l) = req('/v1/acct/gw/google-ai-studio/v1beta/models/'
                   . 'gemini-2.5-flash:generateContent', '{}',
                   'x-goog-api-key' => $TOKEN);
    like(cred(), qr/x-goog-api-key=\Q$KEY{google}\E /,
         "$n - x-goog-api-key replaced");

    keep_reset();
    ($r, $l) = req($CHAT, $BODY, authorization => "Bearer sk-not-a-token");
    is($r->{status}, 401, "$n - any other value: 401");
    is(scalar calls(), 0, "$n - and no call");

    # a provider without a key never gets the gateway token

    ($r) = req('/v1/acct/gw/mistral/v1/chat/completions', $BODY,
               authorization => "Bearer $TOKEN");
    is($r->{status}, 400, "$n - no stored key for the provider: 400");
    like($r->{content}, qr/"code":2040/, "$n - code 2040");
    is(scalar calls(), 0, "$n - the token is not sent");

    # /compat with the OpenAI SDK's apiKey as the gateway token

    keep_reset();
    ($r) = req('/v1/acct/gw/compat/chat/completions',
               '{"model":"anthropic/claude-sonnet-4-5","messages":'
               . '[{"role":"user","content":"hi"}]}',
               authorization => "Bearer $TOKEN",
               'x-mock' => 'fixture=anthropic/text.json');
    is($r->{status}, 200, "$n - /compat, Anthropic: 200");
    is(cred(), "authorization=- x-api-key=$KEY{anthropic} x-goog-api-key=- "
               . "api-key=- x-acme-key=-", "$n - /compat: x-api-key");

    # nothing of it leaves in any record

    keep_reset();
    is(scalar @SEEN, 4, "$n - four provider requests seen");
    my $all = join "\n", map { $J->encode($_) } @SEEN;
    unlike($all, qr/\Q$TOKEN\E|\Q$OTHER\E/,
           "$n - no provider request carried a gateway token");
};

$scenario{'client keys'} = sub {
    my $n = shift;
    my ($r, $l);

    # off (the default): the stored key replaces the client's

    ($r, $l) = req($CHAT, $BODY, %$GW, authorization => "Bearer $OWN");
    like(cred(), qr/^authorization=Bearer \Q$KEY{openai}\E /,
         "$n - off: the stored key wins");

    # on: the client's key wins; without one, the stored key

    mock_reset();
    ($r, $l) = req('/v1/acct/own/openai/chat/completions', $BODY, %$GW,
                   authorization => "Bearer $OWN");
    like(cred(), qr/^authorization=Bearer \Q$OWN\E /,
         "$n - on: the client's key wins");
    is($l->{alias}, '', "$n - on: no alias");

    mock_reset();
    ($r, $l) = req('/v1/acct/own/anthropic/v1/messages', $CLAUDE, %$GW,
                   'x-api-key' => $OWN);
    like(cred(), qr/x-api-key=\Q$OWN\E /, "$n - on: x-api-key of the client");

    mock_reset();
    ($r, $l) = req('/v1/acct/own/openai/chat/completions', $BODY, %$GW);
    like(cred(), qr/^authorization=Bearer \Q$KEY{openai}\E /,
         "$n - on, no key of the client: the stored key");

    mock_reset();
    ($r, $l) = req('/v1/acct/own/openai/chat/completions', $BODY,
                   authorization => "Bearer $TOKEN");
    like(cred(), qr/^authorization=Bearer \Q$KEY{openai}\E /,
         "$n - on: the gateway token is not the client's key");
};

$scenario{'compat and steps'} = sub {
    my $n = shift;
    my ($r, $l);

    ($r) = req('/v1/acct/gw/compat/chat/completions',
               '{"model":"openai/gpt-4o","messages":'
               . '[{"role":"user","content":"hi"}]}', %$GW);
    is($r->{status}, 200, "$n - /compat, OpenAI: 200");
    like(cred(), qr/^authorization=Bearer \Q$KEY{openai}\E /,
         "$n - /compat, OpenAI: Bearer");

    mock_reset();
    ($r) = req('/v1/acct/gw/compat/chat/completions',
               '{"model":"google-ai-studio/gemini-2.5-flash","messages":'
               . '[{"role":"user","content":"hi"}]}', %$GW,
               'x-mock' => 'fixture=google-gemini/text.json');
    is($r->{status}, 200, "$n - /compat, Gemini: 200");
    like(cred(), qr/x-goog-api-key=\Q$KEY{google}\E /,
         "$n - /compat, Gemini: x-goog-api-key");

    # Universal Endpoint: each step its provider's key, its own alias

    my $steps = $J->encode([
        { provider => 'openai', endpoint => 'chat/completions',
          headers => { 'x-mock' => 'status=500',
                       'cf-aig-byok-alias' => 'batch' },
          query => { model => 'gpt-4o' } },
        { provider => 'anthropic', endpoint => 'v1/messages',
          headers => {}, query => $J->decode($CLAUDE) },
    ]);

    mock_reset();
    ($r, $l) = req('/v1/acct/gw', $steps, %$GW);
    is($r->{status}, 200, "$n - Universal: 200");
    is($r->{headers}{'cf-aig-step'}, '1', "$n - Universal: the fallback");
    my @c = calls();
    is(scalar @c, 2, "$n - Universal: two steps");
    is($c[0]{headers}{authorization}, "Bearer $KEY{batch}",
       "$n - step 0: openai, its alias");
    is($c[1]{headers}{'x-api-key'}, $KEY{anthropic},
       "$n - step 1: anthropic");
    ok(!exists $c[1]{headers}{authorization}, "$n - step 1: nothing else");
    is($l->{alias}, 'default', "$n - the alias of the step that answered");

    mock_reset();
    $steps = $J->encode([
        { provider => 'openai', endpoint => 'chat/completions',
          headers => { 'cf-aig-byok-alias' => 'nope' },
          query => { model => 'gpt-4o' } },
        { provider => 'openai', endpoint => 'chat/completions',
          headers => {}, query => { model => 'gpt-4o' } },
    ]);
    ($r, $l) = req('/v1/acct/gw', $steps, %$GW);
    is($r->{headers}{'cf-aig-step'}, '1',
       "$n - Universal: a step with an unknown alias fails, the next runs");
    is(scalar calls(), 1, "$n - one call");

    # retries: each attempt the stored key

    mock_reset();
    ($r, $l) = req($CHAT, $BODY, %$GW, 'cf-aig-max-attempts' => 2,
                   'cf-aig-retry-delay' => 10,
                   'x-mock' => 'status=500');
    @c = calls();
    is(scalar @c, 2, "$n - retries: two attempts");
    is(scalar(grep { $_->{headers}{authorization} eq "Bearer $KEY{openai}" }
                   @c), 2, "$n - retries: each with the stored key");
};

$scenario{'vertex'} = sub {
    my $n = shift;
    my ($r, $l);

    ($r, $l) = req('/v1/acct/gw/google-vertex-ai/v1/projects/byok-proj/'
                   . 'locations/us-central1/publishers/google/models/'
                   . 'gemini-2.5-flash:generateContent', '{}', %$GW,
                   'x-mock' => 'fixture=google-gemini/text.json');
    is($r->{status}, 200, "$n - native: 200");
    my @x = exchanges();
    is(scalar @x, 1, "$n - native: one token exchange");
    is($x[0]{jwt}{claims}{iss}, 'byok@byok-proj.iam.gserviceaccount.com',
       "$n - with the stored service account");
    like(cred(), qr/^authorization=Bearer ya29\.mock-\d+ /,
         "$n - native: the exchanged token");

    mock_reset();
    ($r, $l) = req('/v1/acct/gw/compat/chat/completions',
                   '{"model":"google-vertex-ai/google/gemini-2.5-flash",'
                   . '"messages":[{"role":"user","content":"hi"}]}', %$GW,
                   'x-mock' => 'fixture=google-gemini/text.json');
    is($r->{status}, 200, "$n - /compat: 200");
    my @c = calls();
    is($c[0]{path}, '/v1/projects/byok-proj/locations/us-central1/'
                    . 'publishers/google/models/gemini-2.5-flash:'
                    . 'generateContent',
       "$n - /compat: the project and region of the stored key");
    like($c[0]{headers}{authorization}, qr/^Bearer ya29\.mock-\d+$/,
         "$n - /compat: the exchanged token");
};

$scenario{'never logged'} = sub {
    my $n = shift;

    # a request of each kind, with payloads logged and the mock echoing
    # the headers it got (a provider that echoes the key)

    my ($r) = req($CHAT, $BODY, %$GW);
    like($r->{content}, qr/\Q$KEY{openai}\E/, "$n - the mock echoes the key");
    req($CHAT, $BODY, authorization => "Bearer $TOKEN");
    req('/v1/acct/gw/anthropic/v1/messages', $CLAUDE, 'x-api-key' => $TOKEN);
    req('/v1/acct/gw/compat/chat/completions',
        '{"model":"openai/gpt-4o","messages":[]}', %$GW);
    req($CHAT, $BODY, %$GW, 'cf-aig-byok-alias' => 'nope');

    # the log store, payloads included

    my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
               . "/client/v4/accounts/acct/ai-gateway/gateways/gw/logs";
    my $list = $J->decode($HT->get("$base?per_page=50")->{content});
    my $store = $J->encode($list);
    for my $rec (@{ $list->{result} }) {
        for my $p ('', '/request', '/response') {
            $store .= $HT->get("$base/$rec->{id}$p")->{content};
        }
    }
    ok(@{ $list->{result} } >= 5, "$n - the records are there");
    like($store, qr/REDACTED/, "$n - credentials redacted");
    unlike($store, secrets(), "$n - no key nor token in the log store");

    # the caches: shared memory (its variable) and Redis (every byte)

    for my $c ('shm', 'redis') {
        my @h = ('cf-aig-authorization' => "Bearer $TOKEN",
                 'x-mock' => 'fixture=openai-chat/text.json');
        my ($a, $la) = req("/v1/acct/$c/openai/chat/completions", $BODY, @h);
        my ($b, $lb) = req("/v1/acct/$c/openai/chat/completions", $BODY,
                           'cf-aig-authorization' => "Bearer $OTHER",
                           'x-mock' => 'fixture=openai-chat/text.json');
        is($b->{headers}{'cf-aig-cache-status'}, 'HIT',
           "$c - another client, the same alias: a hit");
        my ($e) = req("/v1/acct/$c/openai/chat/completions", $BODY,
                      authorization => "Bearer $OTHER",
                      'x-mock' => 'fixture=openai-chat/text.json');
        is($e->{headers}{'cf-aig-cache-status'}, 'HIT',
           "$c - the token in Authorization is not in the key: a hit");
        my ($d, $ld) = req("/v1/acct/$c/openai/chat/completions", $BODY, @h,
                           'cf-aig-byok-alias' => 'batch');
        is($d->{headers}{'cf-aig-cache-status'}, 'MISS',
           "$c - another alias: another entry");
        isnt($la->{key}, $ld->{key}, "$c - the alias is in the key");
    }

    my $dump = '';
    my $keys = AIGW::Redis::redis_cmd({ port => $REDIS_PORT }, 'KEYS',
                                      't131:*');
    ok(ref $keys && @$keys >= 2, "$n - Redis holds entries");
    for my $k (@$keys) {
        $dump .= $k . (AIGW::Redis::redis_cmd({ port => $REDIS_PORT },
                                              'GET', $k) // '');
    }
    unlike($dump, secrets(), "$n - no key nor token in Redis");

    my $log = slurp("$ENV{TEST_NGINX_SERVER_ROOT}/logs/byok.log");
    unlike($log, secrets(), "$n - no key nor token in the access log");

    my $err = slurp("$ENV{TEST_NGINX_SERVER_ROOT}/logs/error.log");
    like($err, qr/\[debug\]/, "$n - the error log is at debug");
    unlike($err, qr/\Q$KEY{openai}\E|\Q$KEY{batch}\E|\Q$KEY{anthropic}\E|\Q$KEY{google}\E|\Q$KEY{acme}\E|private_key/,
           "$n - no stored key in the error log at debug");
};

$scenario{'reload'} = sub {
    my $n = shift;

    req($CHAT, $BODY, %$GW);
    like(cred(), qr/\Q$KEY{openai}\E/, "$n - the key before");

    put('openai', "sk-rotated-key-777\n");
    my $pid = slurp("$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid");
    chomp $pid;
    kill 'HUP', $pid;

    my $t = time;
    my $got = '';
    while (time < $t + 10) {
        mock_reset();
        req($CHAT, $BODY, %$GW);
        $got = cred();
        last if $got =~ /sk-rotated-key-777/;
        sleep 0.2;
    }
    like($got, qr/^authorization=Bearer sk-rotated-key-777 /,
         "$n - a reload: the new key");
    put('openai', "$KEY{openai}\n");
};

run_tests();

__DATA__

=== TEST 1: native routes and aliases



=== TEST 2: the gateway token in the provider header



=== TEST 3: client keys



=== TEST 4: compat and steps



=== TEST 5: vertex



=== TEST 6: never logged



=== TEST 7: a key file with a line break inside
--- config eval
"location /v1/ { ai_gateway gw; ai_gateway_provider_key openai file=$main::DIR/crlf; }"
--- must_die
--- error_log
the key "default" of provider "openai" is empty or holds a control character
--- no_error_log
X-Injected



=== TEST 8: a key file with a NUL
--- config eval
"location /v1/ { ai_gateway gw; ai_gateway_provider_key openai file=$main::DIR/nul alias=x; }"
--- must_die
--- error_log
the key "x" of provider "openai" is empty or holds a control character



=== TEST 9: an empty key
--- config eval
"location /v1/ { ai_gateway gw; ai_gateway_provider_key openai file=$main::DIR/empty; }"
--- must_die
--- error_log
is empty or holds a control character



=== TEST 10: a variable that is not set
--- config
location /v1/ { ai_gateway gw; ai_gateway_provider_key openai env=AIGW_TEST_NOT_SET; }
--- must_die
--- error_log
the environment variable "AIGW_TEST_NOT_SET" is not set



=== TEST 11: a key in the configuration is refused
--- config
location /v1/ { ai_gateway gw; ai_gateway_provider_key openai sk-inline-key; }
--- must_die
--- error_log
never written in the configuration



=== TEST 12: two keys of one alias, unknown providers, Bedrock
--- config eval
"location /v1/ { ai_gateway gw; ai_gateway_provider_key openai file=$main::DIR/openai; ai_gateway_provider_key openai file=$main::DIR/batch; }"
--- must_die
--- error_log
duplicate key "default" of provider "openai"



=== TEST 13: an unknown provider
--- config eval
"location /v1/ { ai_gateway gw; ai_gateway_provider_key open-ai file=$main::DIR/openai; }"
--- must_die
--- error_log
unknown provider "open-ai"



=== TEST 14: Bedrock requests are signed by the client
--- config eval
"location /v1/ { ai_gateway gw; ai_gateway_provider_key aws-bedrock file=$main::DIR/openai; }"
--- must_die
--- error_log
requests are signed by the client



=== TEST 15: reload
