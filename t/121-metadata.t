# Copyright (C) ngx_ai_gateway contributors

# cf-aig-metadata through a real nginx: the entries kept, as
# $ai_gateway_metadata shows them in the access log (escape=json, as a
# JSON-lines log writes them), for every edge the hosted gateway's spec
# names; a request never fails for its metadata, and the header never
# reaches the provider.  Each request's log record (read back through
# the Logs API) carries the same entries.

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
my $J = JSON::PP->new->utf8->canonical;
my $CASE = 0;

# the metadata logged for a request with these headers, and the response
sub meta {
    my ($path, $body, %h) = @_;
    my $case = 'm' . ++$CASE;

    my $r = $HT->request('POST',
                         "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
                         { headers => { 'content-type' => 'application/json',
                                        'x-case' => $case,
                                        'cf-aig-event-id' => $case, %h },
                           content => $body });

    my $file = "$ENV{TEST_NGINX_SERVER_ROOT}/logs/meta.log";
    my $t = time;

    while (time < $t + 5) {
        if (open my $fh, '<', $file) {
            for my $line (<$fh>) {
                chomp $line;
                my $j = eval { $J->decode($line) } or next;
                return ($r, $j->{metadata}, record_meta($case))
                    if $j->{case} eq $case;
            }
        }
        sleep 0.05;
    }

    return ($r, "no log line for $case");
}

# the metadata of the newest log record of a case, as JSON text ('' for
# none); found by its event id
sub record_meta {
    my $case = shift;
    my $q = '[{"key":"event_id","operator":"eq","value":["' . $case . '"]}]';
    $q =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    my $t = time;

    while (time < $t + 5) {
        my $g = $HT->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
                         . "/client/v4/accounts/acct/ai-gateway/gateways/gw/"
                         . "logs?filters=$q");
        my $l = $g->{status} == 200 ? $J->decode($g->{content})->{result}
                                    : [];
        if (@$l) {
            my $m = $l->[0]{metadata};
            return '' unless defined $m;
            return ref $m ? $J->encode($m) : $m;
        }
        sleep 0.05;
    }

    return "no record for $case";
}

# two JSON texts mean the same ('' for none)
sub same_json {
    my ($got, $want, $name) = @_;
    utf8::encode($want);                # the access log's text: characters
    my $d = sub { length $_[0] ? eval { $J->decode($_[0]) } // $_[0] : '' };
    is_deeply($d->($got), $d->($want), $name);
}

my $CHAT = '/v1/acct/gw/openai/chat/completions';

# header value => what is kept ('' : no metadata)
my @CASES = (
    [ '{"team": "AI", "user": 12345, "test":true}',
      '{"team":"AI","user":12345,"test":true}', 'three scalars' ],
    [ '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}',
      '{"a":1,"b":2,"c":3,"d":4,"e":5}', 'seven entries: the first five' ],
    [ '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}',
      '{"a":1,"b":2,"c":3,"d":4,"e":5}', 'six entries: the first five' ],
    [ '{"a":"x","n":null}', '', 'a null value: none' ],
    [ '{"a":"x","o":{"k":1}}', '', 'an object value: none' ],
    [ '{"a":"x","l":[1,2]}', '', 'an array value: none' ],
    [ '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":null}', '',
      'a null after the fifth: none' ],
    [ '{"cf.user_id":"u1","team":"AI"}', '{"team":"AI"}',
      'a "cf." key is dropped' ],
    [ '{"a":1,"b":2,"a":3}', '{"a":3,"b":2}',
      'a key twice: first place, last value' ],
    [ '{"price":1.50,"big":12345678901234567890,"neg":-2e3,"f":false}',
      '{"price":1.50,"big":12345678901234567890,"neg":-2e3,"f":false}',
      'numbers as written' ],
    [ '{"quote":"a\\"b","nl":"line\\nbreak","u":"\\u00e9\\u0000"}',
      "{\"quote\":\"a\\\"b\",\"nl\":\"line\\nbreak\","
      . "\"u\":\"\x{e9}\\u0000\"}", 'escapes' ],
    [ '{"long":"' . ('x' x 600) . '"}', '{"long":"' . ('x' x 600) . '"}',
      'a 600-character value' ],
    [ '{}', '', 'an empty object: none' ],
    [ '[]', '', 'an array: none' ],
    [ '"text"', '', 'a string: none' ],
    [ '{"a":', '', 'bad JSON: none' ],
    [ 'team=AI', '', 'not JSON: none' ],
    [ '{"a":1}{"b":2}', '', 'two objects: none' ],
);

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'END');
    ai_gateway_log_zone aigl:1m;
    log_format meta escape=json '{"case":"$http_x_case","status":$status,"metadata":"$ai_gateway_metadata"}';
END

    $block->set_value("config", <<'END');
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs aigl;
        access_log logs/meta.log meta;
    }
    location /client/v4/ {
        ai_gateway_api;
    }
END

    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");
    $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
});

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;

    if ($block->name =~ /edge/) {
        for my $c (@CASES) {
            my ($value, $want, $name) = @$c;
            my ($r, $got, $rec) = meta($CHAT, '{"model":"gpt-4o"}',
                                       'cf-aig-metadata' => $value);

            is($r->{status}, 200, "$name: the request does not fail");
            is($got, $want, "$name: $value");
            same_json($rec, $want, "$name: the log record");

            my $echo = eval { $J->decode($r->{content}) } // {};
            ok(!exists $echo->{headers}{'cf-aig-metadata'},
               "$name: not sent to the provider");
        }

        my ($r, $got, $rec) = meta($CHAT, '{"model":"gpt-4o"}');
        is($got, '', 'no header: none');
    }

    if ($block->name =~ /errors/) {
        # a request the gateway refuses still has its metadata

        my ($r, $got, $rec) = meta('/v1/acct/gw/nope/chat/completions', '{}',
                             'cf-aig-metadata' => '{"team":"AI"}');
        is($r->{status}, 400, 'an unknown provider: 400');
        is($got, '{"team":"AI"}', 'an unknown provider: metadata kept');

        ($r, $got, $rec) = meta($CHAT, '{}', 'cf-aig-metadata' => '{"team":"AI"}',
                          'x-mock' => 'status=503');
        is($got, '{"team":"AI"}', 'a provider error: metadata kept');
        same_json($rec, '{"team":"AI"}', 'a provider error: the record');

        # attempts: the request's header; a Universal step's own

        ($r, $got, $rec) = meta($CHAT, '{}', 'cf-aig-metadata' => '{"try":2}',
                          'cf-aig-max-attempts' => 2);
        is($got, '{"try":2}', 'retries: the request\'s metadata');
        same_json($rec, '{"try":2}', 'retries: the record');

        my $steps = [
            { provider => 'openai', endpoint => 'chat/completions',
              headers => { 'x-mock' => 'status=500',
                           'cf-aig-metadata' => '{"step":0}' },
              query => { model => 'gpt-4o' } },
            { provider => 'openai', endpoint => 'chat/completions',
              headers => {}, query => { model => 'gpt-4o' } },
        ];

        ($r, $got, $rec) = meta('/v1/acct/gw', $J->encode($steps),
                          'cf-aig-metadata' => '{"outer":true}');
        is($r->{headers}{'cf-aig-step'}, '1', 'Universal: step 1');
        is($got, '{"outer":true}',
           'Universal: a step without its own metadata has the request\'s');
        same_json($rec, '{"outer":true}', 'Universal: the step\'s record');

        $steps->[1]{headers}{'cf-aig-metadata'} = '{"step":1}';

        ($r, $got, $rec) = meta('/v1/acct/gw', $J->encode($steps),
                          'cf-aig-metadata' => '{"outer":true}');
        is($got, '{"step":1}', 'Universal: a step\'s own metadata');
        same_json($rec, '{"step":1}', 'Universal: its record');
    }
});

run_tests();

__DATA__

=== TEST 1: metadata edge cases

=== TEST 2: metadata of refused, failed and retried requests
