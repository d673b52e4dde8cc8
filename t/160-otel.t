# Copyright (C) ngx_ai_gateway contributors

# OpenTelemetry traces (docs/otel.md): spans exported as OTLP/JSON by
# ai_gateway_otel_exporter to t/mock/otlp.js, which decodes every body with
# the official OTLP definitions.  Span names and attributes, payloads only
# when payload logging allows them, cf-aig-metadata, parent and child spans
# of retries and Universal steps, trace context from cf-aig-otel-* and
# traceparent, batching on one kept connection, the exporter's headers and
# authorization, https with the certificate verified, and a collector that
# is closed, never answers or refuses: the client's answers stay normal,
# and the spans lost are counted (the worker's count at its exit).

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use File::Temp ();
use POSIX ();
use Time::HiRes qw(time sleep);

repeat_each(1);
master_on();    # a graceful shutdown (TEST 19) needs a worker process
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
our $J = JSON::PP->new->utf8->canonical;

# the receiver, for this file

our $OTLP_PID;

{
    pipe(my $r, my $w) or die "pipe: $!";
    $OTLP_PID = fork();
    die "fork: $!" unless defined $OTLP_PID;
    if ($OTLP_PID == 0) {
        open STDOUT, '>&', $w or POSIX::_exit(126);
        close $r;
        { exec 'node', 't/mock/otlp.js', $ENV{TEST_NGINX_CERT_DIR} };
        POSIX::_exit(127);
    }
    close $w;
    my $line = <$r>;
    die "t/mock/otlp.js did not start\n"
        unless $line && $line =~ /^OTLP_READY (\{.*\})/;
    my $p = $J->decode($1);
    $ENV{TEST_NGINX_OTLP_PORT} = $p->{port};
    $ENV{TEST_NGINX_OTLP_TLS_PORT} = $p->{tls_port};
    $ENV{TEST_NGINX_OTLP_HANG_PORT} = $p->{hang_port};
    $ENV{TEST_NGINX_OTLP_CLOSED_PORT} = $p->{closed_port};
}

END { kill 'TERM', $OTLP_PID if $OTLP_PID; }

our $AUTH = File::Temp->new();
print $AUTH "Bearer otel-secret-42\n";
close $AUTH;
$ENV{TEST_NGINX_OTEL_AUTH} = $AUTH->filename;

sub otlp {
    my ($method, $path) = @_;
    my $r = $HT->request($method,
                         "http://127.0.0.1:$ENV{TEST_NGINX_OTLP_PORT}$path");
    return eval { $J->decode($r->{content}) };
}

sub otlp_reset { otlp('POST', '/__otlp/reset') }

# the exports received, once there are at least $n of them (5 s at most)

sub exports {
    my $n = shift // 1;
    my $l;
    for (1 .. 100) {
        $l = otlp('GET', '/__otlp/log');
        last if $l && @{ $l->{exports} } >= $n;
        sleep 0.05;
    }
    return $l ? $l->{exports} : [];
}

# the spans received, once there are at least $n of them (5 s at most)

sub spans_of {
    my $n = shift;
    my @s;
    for (1 .. 100) {
        my $l = otlp('GET', '/__otlp/log');
        @s = spans(@{ $l ? $l->{exports} : [] });
        last if @s >= $n;
        sleep 0.05;
    }
    return @s;
}

sub spans {
    my @s;
    for my $e (@_) {
        next unless $e->{body};
        for my $rs (@{ $e->{body}{resourceSpans} }) {
            for my $ss (@{ $rs->{scopeSpans} }) {
                push @s, @{ $ss->{spans} };
            }
        }
    }
    return @s;
}

sub attrs {
    my $s = shift;
    my %a;
    for my $kv (@{ $s->{attributes} }) {
        my ($t) = keys %{ $kv->{value} };
        $a{ $kv->{key} } = [$t, $kv->{value}{$t}];
    }
    return \%a;
}

sub gw {
    my ($path, $body, %h) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path";
    return $HT->request('POST', $url, {
        headers => { 'content-type' => 'application/json', %h },
        content => $body,
    });
}

sub chat { "/v1/acct/gw/openai/chat/completions" }

my $runs = 0;
sub script {
    my %t = @_;
    $runs++;
    return join ';', "script=o$runs",
        map { my $v = $t{$_}; $v =~ s/;/%3B/g; "$_=$v" } sort keys %t;
}

my $BODY = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}';

add_block_preprocessor(sub {
    my $block = shift;

    my $extra = $block->gateway // '';
    my $exporter = $block->exporter
        // "ai_gateway_otel_exporter "
           . "http://127.0.0.1:\$TEST_NGINX_OTLP_PORT/v1/traces "
           . "header=x-team:ai authorization_file=\$TEST_NGINX_OTEL_AUTH "
           . "batch=1 flush=50ms;";

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_retry_delay 0;
        $exporter
        $extra
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
            otlp_reset();
            $scenario{$k}->($name);
        }
    }
});

$scenario{'request span'} = sub {
    my $n = shift;
    my $t0 = time;
    my $r = gw(chat(), $BODY, authorization => 'Bearer sk-secret-123',
               'x-mock' => 'fixture=openai-chat/text.json',
               'cf-aig-metadata' =>
                   '{"team":"a","gen_ai.system":"x","n":3,"ok":true,'
                   . '"ai_gateway.cached":"x"}');
    is($r->{status}, 200, "$n - 200");
    my $e = exports(1);
    is(scalar @$e, 1, "$n - one export");
    ok($e->[0]{valid}, "$n - a valid ExportTraceServiceRequest")
        or diag($e->[0]{error});
    is($e->[0]{path}, '/v1/traces', "$n - POST /v1/traces");
    is($e->[0]{method}, 'POST', "$n - POST");
    is($e->[0]{headers}{'content-type'}, 'application/json',
       "$n - Content-Type");
    is($e->[0]{headers}{authorization}, 'Bearer otel-secret-42',
       "$n - the authorization from its file");
    is($e->[0]{headers}{'x-team'}, 'ai', "$n - the exporter's header");
    is($e->[0]{headers}{host}, "127.0.0.1:$ENV{TEST_NGINX_OTLP_PORT}",
       "$n - Host");
    my $res = $e->[0]{body}{resourceSpans}[0];
    is($res->{resource}{attributes}[0]{key}, 'service.name',
       "$n - the resource");
    is($res->{scopeSpans}[0]{scope}{name}, 'ngx_ai_gateway', "$n - scope");
    my @s = spans(@$e);
    is(scalar @s, 1, "$n - one span");
    my $s = $s[0];
    is($s->{name}, 'ai_gateway.request', "$n - its name");
    is($s->{kind}, 2, "$n - SERVER");
    like($s->{traceId}, qr/^[0-9a-f]{32}$/, "$n - a new trace id");
    like($s->{spanId}, qr/^[0-9a-f]{16}$/, "$n - a span id");
    ok(!exists $s->{parentSpanId}, "$n - no parent");
    like($s->{startTimeUnixNano}, qr/^\d{19}$/, "$n - start in ns");
    ok($s->{endTimeUnixNano} >= $s->{startTimeUnixNano}, "$n - end after");
    ok(abs($s->{startTimeUnixNano} / 1e9 - $t0) < 5, "$n - start is now");
    is($s->{status}{code}, 1, "$n - status OK");
    my $a = attrs($s);
    is_deeply($a->{'gen_ai.request.model'}, ['stringValue', 'gpt-4o-mini'],
              "$n - gen_ai.request.model");
    is_deeply($a->{'gen_ai.model.provider'}, ['stringValue', 'openai'],
              "$n - gen_ai.model.provider");
    is($a->{'gen_ai.usage.input_tokens'}[0], 'intValue',
       "$n - gen_ai.usage.input_tokens");
    ok($a->{'gen_ai.usage.input_tokens'}[1] > 0, "$n - input tokens > 0");
    is($a->{'gen_ai.usage.output_tokens'}[0], 'intValue',
       "$n - gen_ai.usage.output_tokens");
    ok(!$a->{'gen_ai.usage.cost'}
       || $a->{'gen_ai.usage.cost'}[0] eq 'doubleValue',
       "$n - gen_ai.usage.cost, a double when known");
    is_deeply($a->{'http.response.status_code'}, ['intValue', '200'],
              "$n - the status");
    is_deeply($a->{'ai_gateway.log_id'},
              ['stringValue', $r->{headers}{'cf-aig-log-id'}],
              "$n - the log id the client got");
    is_deeply($a->{'ai_gateway.cached'}, ['boolValue', JSON::PP::false],
              "$n - not cached");
    is_deeply($a->{'ai_gateway.gateway_id'}, ['stringValue', 'gw'],
              "$n - the gateway");
    is_deeply($a->{team}, ['stringValue', 'a'], "$n - metadata string");
    is_deeply($a->{n}, ['intValue', '3'], "$n - metadata number");
    is_deeply($a->{ok}, ['boolValue', JSON::PP::true], "$n - metadata bool");
    ok(!exists $a->{'gen_ai.system'}, "$n - no gen_ai. metadata key");
    is(scalar(grep { $_->{key} eq 'ai_gateway.cached' } @{ $s->{attributes} }),
       1, "$n - no metadata key of the gateway's own");
    is_deeply($a->{'gen_ai.prompt_json'}, ['stringValue', $BODY],
              "$n - gen_ai.prompt_json");
    is($a->{'gen_ai.completion_json'}[1], $r->{content},
       "$n - gen_ai.completion_json");
    unlike($J->encode($e), qr/sk-secret-123/, "$n - no credential");
};

$scenario{'payload off'} = sub {
    my $n = shift;
    my $r = gw(chat(), $BODY, 'cf-aig-collect-log-payload' => 'false');
    is($r->{status}, 200, "$n - 200");
    my ($s) = spans(@{ exports(1) });
    my $a = attrs($s);
    ok($a->{'gen_ai.request.model'}, "$n - a span");
    ok(!exists $a->{'gen_ai.prompt_json'}, "$n - no prompt");
    ok(!exists $a->{'gen_ai.completion_json'}, "$n - no completion");
};

$scenario{'payload off by default'} = sub {
    my $n = shift;
    my $r = gw(chat(), $BODY);
    is($r->{status}, 200, "$n - 200");
    my ($s) = spans(@{ exports(1) });
    ok(!exists attrs($s)->{'gen_ai.prompt_json'}, "$n - no prompt");
    $r = gw(chat(), $BODY, 'cf-aig-collect-log-payload' => 'true');
    my @s = spans(@{ exports(2) });
    is(attrs($s[1])->{'gen_ai.prompt_json'}[1], $BODY,
       "$n - the header allows it");
};

$scenario{'trace context'} = sub {
    my $n = shift;
    my $t = '4BF92F3577B34DA6A3CE929D0E0E4736';
    my $p = '00F067AA0BA902B7';
    my @cases = (
        [{ 'cf-aig-otel-trace-id' => $t, 'cf-aig-otel-parent-span-id' => $p },
         lc $t, lc $p, 'cf-aig-otel-*'],
        [{ 'cf-aig-otel-trace-id' => lc $t }, lc $t, undef,
         'a trace without a parent'],
        [{ traceparent => '00-' . lc($t) . '-' . lc($p) . '-01' },
         lc $t, lc $p, 'traceparent'],
        [{ 'cf-aig-otel-trace-id' => '0af7651916cd43dd8448eb211c80319c',
           traceparent => '00-' . lc($t) . '-' . lc($p) . '-01' },
         '0af7651916cd43dd8448eb211c80319c', undef, 'cf-aig-otel-* first'],
        [{ 'cf-aig-otel-trace-id' => substr($t, 1),
           'cf-aig-otel-parent-span-id' => $p }, undef, undef, 'too short'],
        [{ 'cf-aig-otel-trace-id' => 'zz' . substr($t, 2) }, undef, undef,
         'not hex'],
        [{ 'cf-aig-otel-trace-id' => '0' x 32 }, undef, undef, 'zeros'],
        [{ traceparent => 'ff-' . lc($t) . '-' . lc($p) . '-01' }, undef,
         undef, 'traceparent version ff'],
        [{ traceparent => '00-' . lc($t) . '-' . lc($p) . '-01-x' }, undef,
         undef, 'traceparent 00 too long'],
        [{ traceparent => '00-' . lc($t) . '-' . ('0' x 16) . '-01' }, undef,
         undef, 'traceparent parent zeros'],
        [{ traceparent => '00-' . ('x' x 32) . '-' . lc($p) . '-01' }, undef,
         undef, 'traceparent not hex'],
    );
    my $i = 0;
    for my $c (@cases) {
        $i++;
        my ($h, $trace, $parent, $what) = @$c;
        my $r = gw(chat(), $BODY, %$h);
        is($r->{status}, 200, "$n - $what - 200");
        my @s = spans(@{ exports($i) });
        my $s = $s[-1];
        if (defined $trace) {
            is($s->{traceId}, $trace, "$n - $what - the trace");
        } else {
            like($s->{traceId}, qr/^[0-9a-f]{32}$/, "$n - $what - a new one");
            isnt($s->{traceId}, lc $t, "$n - $what - not the client's");
        }
        is($s->{parentSpanId}, $parent, "$n - $what - the parent");
    }
};

$scenario{'retry spans'} = sub {
    my $n = shift;
    my $r = gw(chat(), $BODY, 'cf-aig-max-attempts' => 3,
               'x-mock' => script(try1 => 'status=500'),
               'cf-aig-otel-trace-id' => 'ab' x 16);
    is($r->{status}, 200, "$n - 200");
    my @s = spans_of(3);
    is(scalar @s, 3, "$n - a request and two attempts");
    my ($req, @att) = @s;
    is($req->{name}, 'ai_gateway.request', "$n - the request first");
    is_deeply([map { $_->{name} } @att],
              ['ai_gateway.attempt', 'ai_gateway.attempt'], "$n - attempts");
    is_deeply([map { $_->{parentSpanId} } @att], [($req->{spanId}) x 2],
              "$n - children of the request's span");
    is_deeply([map { $_->{traceId} } @s], [('ab' x 16) x 3],
              "$n - one trace");
    is_deeply([map { $_->{kind} } @att], [3, 3], "$n - CLIENT");
    is_deeply([map { attrs($_)->{'http.response.status_code'}[1] } @att],
              ['500', '200'], "$n - their statuses");
    is_deeply([map { $_->{status}{code} } @att], [2, 1],
              "$n - ERROR, then OK");
    is(attrs($req)->{'http.response.status_code'}[1], '200',
       "$n - the request's status");
    is(attrs($req)->{'ai_gateway.log_id'}[1], $r->{headers}{'cf-aig-log-id'},
       "$n - the request's log id");
    is(attrs($att[1])->{'ai_gateway.log_id'}[1],
       $r->{headers}{'cf-aig-log-id'}, "$n - the answering attempt's too");
    is(attrs($req)->{'gen_ai.model.provider'}[1], 'openai',
       "$n - the provider");
    ok($att[0]{startTimeUnixNano} <= $att[1]{startTimeUnixNano},
       "$n - in order");
};

$scenario{'universal spans'} = sub {
    my $n = shift;
    my $steps = [
        { provider => 'openai', endpoint => 'chat/completions',
          headers => { 'x-mock' => 'status=500' },
          query => { model => 'gpt-4o-mini' } },
        { provider => 'openai', endpoint => 'chat/completions',
          headers => {}, query => { model => 'gpt-4o' } },
    ];
    my $r = gw('/v1/acct/gw', $J->encode($steps));
    is($r->{status}, 200, "$n - 200");
    is($r->{headers}{'cf-aig-step'}, '1', "$n - the second step answered");
    my @s = spans_of(3);
    is(scalar @s, 3, "$n - a request and two steps");
    my ($req, @st) = @s;
    is($req->{name}, 'ai_gateway.request', "$n - the request");
    is_deeply([map { $_->{name} } @st], ['ai_gateway.step', 'ai_gateway.step'],
              "$n - the steps");
    is_deeply([map { $_->{parentSpanId} } @st], [($req->{spanId}) x 2],
              "$n - children of the request's span");
    is_deeply([map { attrs($_)->{'ai_gateway.step'}[1] } @st], ['0', '1'],
              "$n - their steps");
    is_deeply([map { attrs($_)->{'gen_ai.request.model'}[1] } @st],
              ['gpt-4o-mini', 'gpt-4o'], "$n - their models");
    is(attrs($req)->{'gen_ai.request.model'}[1], 'gpt-4o',
       "$n - the request's model, its answer's");
    ok(!exists attrs($req)->{'gen_ai.prompt_json'},
       "$n - the Universal body (its steps' keys) never exported");
};

$scenario{'batching'} = sub {
    my $n = shift;
    for (1 .. 10) {
        my $r = gw(chat(), $BODY);
        is($r->{status}, 200, "$n - request $_");
    }
    my $e = exports(2);
    sleep 0.3;
    $e = exports(2);
    is(scalar @$e, 2, "$n - 10 spans in 2 POSTs");
    is_deeply([map { scalar spans($_) } @$e], [5, 5], "$n - of 5 each");
    ok((!grep { !$_->{valid} } @$e), "$n - both valid");
    is($e->[0]{conn}, $e->[1]{conn}, "$n - on one kept connection");
};

$scenario{'dead collector'} = sub {
    my $n = shift;
    my $ok = 0;
    my $t0 = time;
    for (1 .. 20) {
        my $r = gw(chat(), $BODY);
        $ok++ if $r->{status} == 200 && $r->{content} =~ /chat/;
    }
    is($ok, 20, "$n - 20 normal answers");
};

$scenario{'silent collector'} = sub {
    my $n = shift;
    my $ok = 0;
    for (1 .. 20) {
        my $r = gw(chat(), $BODY);
        $ok++ if $r->{status} == 200 && $r->{content} =~ /chat/;
    }
    is($ok, 20, "$n - 20 normal answers");
    my $l = otlp('GET', '/__otlp/log');
    ok($l->{hung} >= 1, "$n - the collector was connected to");
};

$scenario{'refusing collector'} = sub {
    my $n = shift;
    otlp('POST', '/__otlp/status?code=500');
    my $r = gw(chat(), $BODY);
    is($r->{status}, 200, "$n - 200");
    my $e = exports(1);
    is(scalar @$e, 1, "$n - the batch sent");
    sleep 0.2;
};

$scenario{'queue full'} = sub {
    my $n = shift;
    for (1 .. 10) {
        my $r = gw(chat(), $BODY);
        is($r->{status}, 200, "$n - request $_");
    }
};

$scenario{'https'} = sub {
    my $n = shift;
    my $r = gw(chat(), $BODY);
    is($r->{status}, 200, "$n - 200");
    my $e = exports(1);
    is(scalar @$e, 1, "$n - one export");
    ok($e->[0]{tls}, "$n - over TLS");
    ok($e->[0]{valid}, "$n - valid");
};

# until the error log has a line (10 s at most: valgrind is slow)

sub error_log_has {
    my $re = shift;
    my $log = ($ENV{TEST_NGINX_SERVROOT} || 't/servroot') . '/logs/error.log';
    for (1 .. 200) {
        if (open my $fh, '<', $log) {
            local $/;
            my $all = <$fh>;
            return 1 if $all =~ $re;
        }
        sleep 0.05;
    }
    return 0;
}

$scenario{'untrusted collector'} = sub {
    my $n = shift;
    my $r = gw(chat(), $BODY);
    is($r->{status}, 200, "$n - 200");
    ok(error_log_has(qr/ai_gateway otel: the certificate of/),
       "$n - refused");
    my $l = otlp('GET', '/__otlp/log');
    is(scalar @{ $l->{exports} }, 0, "$n - nothing sent");
};

$scenario{'two exporters'} = sub {
    my $n = shift;
    my $r = gw(chat(), $BODY);
    is($r->{status}, 200, "$n - 200");
    my $e = exports(2);
    is(scalar @$e, 2, "$n - one export to each");
    is_deeply([sort map { $_->{path} } @$e], ['/a', '/b'], "$n - their paths");
    is((spans($e->[0]))[0]{spanId}, (spans($e->[1]))[0]{spanId},
       "$n - the same span");
};

$scenario{'graceful shutdown'} = sub {
    my $n = shift;
    otlp('POST', '/__otlp/status?code=200&length=1');
    for (1 .. 3) {
        my $r = gw(chat(), $BODY);
        is($r->{status}, 200, "$n - request $_");
    }
    my $e = exports(1);
    is(scalar @$e, 1, "$n - a batch of 2 sent, 1 span queued");
    is(scalar spans(@$e), 2, "$n - 2 spans");
};

$scenario{'log records'} = sub {
    my $n = shift;
    my $r = gw(chat(), $BODY, 'cf-aig-max-attempts' => 3,
               'x-mock' => script(try1 => 'status=500'),
               'cf-aig-metadata' => '{"team":"a"}');
    is($r->{status}, 200, "$n - 200");
    my $e;
    for (1 .. 100) {
        $e = otlp('GET', '/__otlp/log')->{exports};
        last if @$e >= 5;
        sleep 0.05;
    }
    my @t = grep { $_->{path} eq '/v1/traces' } @$e;
    my @l = grep { $_->{path} eq '/v1/logs' } @$e;
    is(scalar @t, 3, "$n - three spans");
    is(scalar @l, 2, "$n - the two attempts' log records");
    ok((!grep { !$_->{valid} } @l), "$n - valid ExportLogsServiceRequests")
        or diag(join ' ', map { $_->{error} // '' } @l);
    is($l[0]{headers}{authorization}, 'Bearer otel-secret-42',
       "$n - with the exporter's authorization");
    my @rec = map { $_->{body}{resourceLogs}[0]{scopeLogs}[0]{logRecords}[0] }
              @l;
    my @s = spans(@t);
    my %span = map { $_->{spanId} => $_ } @s;
    for my $i (0, 1) {
        my $x = $rec[$i];
        ok($span{ $x->{spanId} }, "$n - record $i in a span");
        is($x->{traceId}, $s[0]{traceId}, "$n - record $i in the trace");
        my $b = JSON::PP->new->decode($x->{body}{stringValue});
        is($b->{status_code}, $i ? 200 : 500, "$n - record $i, its status");
        is($x->{severityText}, $i ? 'INFO' : 'ERROR',
           "$n - record $i, its severity");
        is(attrs($x)->{team}[1], 'a', "$n - record $i, the metadata");
        like($x->{timeUnixNano}, qr/^\d{19}$/, "$n - record $i, its time");
    }
    my $b = JSON::PP->new->decode($rec[1]{body}{stringValue});
    is($b->{id}, $r->{headers}{'cf-aig-log-id'},
       "$n - the answer's record has the client's log id");
    otlp_reset();
    $r = gw(chat(), $BODY, 'cf-aig-collect-log' => 'false');
    is($r->{status}, 200, "$n - not collected: 200");
    $e = exports(1);
    sleep 0.3;
    $e = otlp('GET', '/__otlp/log')->{exports};
    is_deeply([map { $_->{path} } @$e], ['/v1/traces'],
              "$n - not collected: a span, no log record");
};

$scenario{'inherited and off'} = sub {
    my $n = shift;
    my $r = gw(chat(), $BODY);
    is($r->{status}, 200, "$n - 200");
    $r = gw("/v1/acct/gw2/openai/chat/completions", $BODY);
    is($r->{status}, 200, "$n - 200 from the gateway without export");
    my $e = exports(1);
    sleep 0.3;
    $e = otlp('GET', '/__otlp/log')->{exports};
    is_deeply([map { $_->{path} } @$e], ['/inherited'],
              "$n - one export, from the location that inherits");
    is(attrs((spans(@$e))[0])->{'ai_gateway.gateway_id'}[1], 'gw',
       "$n - of gateway gw");
};

# the spans exported and dropped are counted in the metrics zone, across
# the exporters (docs/observability.md): one collector takes them, one is
# closed

sub otel_metric {
    my ($name, $want) = @_;
    my $v = -1;
    for (1 .. 100) {
        my $r = $HT->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
                         . "/metrics");
        ($v) = ($r->{content} // '') =~ /^\Q$name\E (\d+)$/m;
        last if defined $v && $v >= $want;
        sleep 0.05;
    }
    return $v;
}

$scenario{'spans in the metrics'} = sub {
    my $n = shift;
    for (1 .. 3) {
        my $r = gw(chat(), $BODY);
        is($r->{status}, 200, "$n - request $_");
    }
    my $e = exports(3);
    is(scalar(spans(@$e)), 3, "$n - 3 spans to the collector");
    is(otel_metric('ai_gateway_otel_spans_exported_total', 3), 3,
       "$n - 3 spans exported, in the metrics");
    is(otel_metric('ai_gateway_otel_spans_dropped_total', 3), 3,
       "$n - 3 dropped by the closed collector, in the metrics");
};

run_tests();

__DATA__

=== TEST 1: request span
--- gateway
ai_gateway_log_payload on;



=== TEST 2: payload off
--- gateway
ai_gateway_log_payload on;



=== TEST 3: payload off by default
--- gateway
ai_gateway_log_payload off;



=== TEST 4: trace context



=== TEST 5: retry spans



=== TEST 6: universal spans



=== TEST 7: batching
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_PORT batch=5 flush=1h;
--- shutdown_error_log
ai_gateway otel: 10 spans exported, 0 dropped
--- no_shutdown_error_log
[alert]



=== TEST 8: dead collector
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_CLOSED_PORT batch=1 flush=50ms;
--- error_log eval
qr/ai_gateway otel: cannot (connect|send)|the collector closed the connection/
--- no_error_log
[alert]
[crit]
[emerg]
--- shutdown_error_log eval
qr/ai_gateway otel: 0 spans exported, 20 dropped/



=== TEST 9: silent collector
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_HANG_PORT batch=1 flush=50ms timeout=300ms;
--- shutdown_error_log eval
qr/ai_gateway otel: 0 spans exported, 20 dropped/



=== TEST 10: refusing collector
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_PORT batch=1;
--- error_log
ai_gateway otel: the collector refused the batch (status 500): 1 spans dropped
--- no_error_log
[alert]
[crit]
[emerg]
--- shutdown_error_log
ai_gateway otel: 0 spans exported, 1 dropped



=== TEST 11: queue full
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_HANG_PORT batch=1 queue=2 flush=1h timeout=300ms;
--- shutdown_error_log
ai_gateway otel: 0 spans exported, 10 dropped



=== TEST 12: https
--- exporter
ai_gateway_otel_exporter https://localhost:$TEST_NGINX_OTLP_TLS_PORT batch=1 trusted_certificate=$TEST_NGINX_CERT_DIR/ca.crt;



=== TEST 13: untrusted collector
--- exporter
ai_gateway_otel_exporter https://localhost:$TEST_NGINX_OTLP_TLS_PORT batch=1 trusted_certificate=$TEST_NGINX_CERT_DIR/bad-ca.crt;
--- error_log
ai_gateway otel: the certificate of "https://localhost:
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 14: two exporters
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_PORT/a batch=1;
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_PORT/b batch=1;



=== TEST 15: a URL without a scheme
--- exporter
ai_gateway_otel_exporter 127.0.0.1:4318;
--- must_die
--- error_log
the collector's URL "127.0.0.1:4318" must start with "http://" or "https://"



=== TEST 16: a header the exporter sets
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:4318 header=Host:evil;
--- must_die
--- error_log
header "Host" of "ai_gateway_otel_exporter" directive is set by the exporter itself



=== TEST 17: an invalid header
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:4318 "header=Bad Name:x";
--- must_die
--- error_log
invalid header name or value



=== TEST 18: no authorization file
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:4318 authorization_file=/nonexistent/otel;
--- must_die
--- error_log
cannot open the authorization file "/nonexistent/otel"



=== TEST 19: graceful shutdown
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_PORT batch=2 flush=1h;
--- shutdown_error_log
ai_gateway otel: 3 spans exported, 0 dropped
--- no_shutdown_error_log
[alert]



=== TEST 20: log records
--- exporter
ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_PORT/v1/traces logs authorization_file=$TEST_NGINX_OTEL_AUTH batch=1;



=== TEST 21: inherited and off
--- config
    location = /ping { return 200 ok; }
    ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_PORT/inherited batch=1;
    location /v1/acct/gw/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location /v1/acct/gw2/ {
        ai_gateway gw2 account=acct;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_otel_exporter off;
    }



=== TEST 22: https by address
--- exporter
ai_gateway_otel_exporter https://127.0.0.1:$TEST_NGINX_OTLP_TLS_PORT batch=1 trusted_certificate=$TEST_NGINX_CERT_DIR/ca.crt;



=== TEST 23: spans in the metrics
--- http_config
ai_gateway_metrics_zone otelm:1m;
--- config
    location = /ping { return 200 ok; }
    location = /metrics { ai_gateway_metrics_endpoint otelm; }
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_metrics otelm;
        ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_PORT batch=1 flush=50ms;
        ai_gateway_otel_exporter http://127.0.0.1:$TEST_NGINX_OTLP_CLOSED_PORT batch=1 flush=50ms;
    }
--- error_log eval
qr/ai_gateway otel: cannot (connect|send)|the collector closed the connection/
--- no_error_log
[alert]
[crit]
[emerg]
