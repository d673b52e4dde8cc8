# Copyright (C) ngx_ai_gateway contributors

# Streaming: SSE reaches the client event by event with the provider's
# pacing, recorded provider streams pass byte for byte, a client that goes
# away closes the upstream connection, a truncated stream is never passed
# off as complete.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use Time::HiRes qw(time);

repeat_each(1);
no_shuffle();
no_long_string();

sub req {
    my ($path, $mock) = @_;
    return "POST /v1/acct/gw/$path HTTP/1.1\r\nHost: localhost\r\n"
         . "x-mock: $mock\r\nContent-Type: application/json\r\n"
         . "Content-Length: 15\r\nConnection: close\r\n\r\n{\"stream\":true}";
}

sub slurp {
    my $f = shift;
    open my $fh, '<:raw', "t/fixtures/$f" or die "$f: $!";
    local $/;
    return <$fh>;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("config", <<'END') unless defined $block->config;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider google-ai-studio http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
END
});

# the checks that need to see the stream as it arrives run here, while the
# block's nginx is up

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    my $name = $block->name;

    return if $dry_run;

    if ($name =~ /pacing/) {
        my $r = stream_request(req("openai/chat/completions",
                                   "sse=5;interval=300"));
        my (@t, %seen);
        for my $ev (@{ $r->{events} }) {
            while ($ev->[1] =~ /data: \{"i":(\d+)/g) {
                push @t, [$1, $ev->[0] - $r->{start}] unless $seen{$1}++;
            }
        }

        is(scalar @t, 5, "$name - all five events arrived");
        cmp_ok($t[0][1], '<', 0.25,
               "$name - the first event did not wait for the others");
        for my $i (1 .. $#t) {
            cmp_ok($t[$i][1] - $t[$i - 1][1], '>', 0.2,
                   "$name - event $i arrived on its own, paced");
        }
        ok($r->{complete}, "$name - the stream ended properly");
    }

    if ($name =~ /abort/) {
        mock_reset();
        my $r = stream_request(req("openai/chat/completions",
                                   "sse=40;interval=100"),
                               abort_after => 2);
        my $log = mock_wait(sub {
            my $q = $_[0]{requests}[-1];
            $q && $q->{aborted};
        }, 3);

        ok($log, "$name - the provider saw its connection closed");
        cmp_ok($log ? $log->{requests}[-1]{events_sent} : 99, '<', 20,
               "$name - the stream stopped early");
    }

    if ($name =~ /truncated/) {
        my $r = stream_request(req("openai/chat/completions",
                                   "sse=10;interval=50;close_after=3"));
        my $all = join '', map { $_->[1] } @{ $r->{events} };
        like($all, qr/"i":2/, "$name - events before the cut arrived");
        ok(!$r->{complete},
           "$name - no final chunk: the client sees a cut stream");
    }
});

run_tests();

__DATA__

=== TEST 1: SSE pacing is kept (events are flushed as they arrive)
--- request
GET /v1/acct/gw/openai/models
--- response_body_like: "path":"/v1/models"
--- no_error_log
[error]



=== TEST 2: a recorded Anthropic stream passes byte for byte, as SSE
--- request
POST /v1/acct/gw/anthropic/v1/messages
{"stream":true}
--- more_headers
x-mock: fixture=anthropic/stream-text.sse;interval=5
--- response_headers
Content-Type: text/event-stream; charset=utf-8
Transfer-Encoding: chunked
--- response_body eval
main::slurp("anthropic/stream-text.sse")
--- no_error_log
[error]



=== TEST 3: a recorded Gemini stream keeps its CRLF framing
--- request
POST /v1/acct/gw/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse
{}
--- more_headers
x-mock: fixture=google-gemini/stream-text.sse;interval=5
--- response_body eval
main::slurp("google-gemini/stream-text.sse")
--- no_error_log
[error]



=== TEST 4: a recorded OpenAI stream with tool calls passes byte for byte
(the recording asked for usage, so does the request: a request that does
not gets no usage chunk, see t/120-usage.t)
--- request
POST /v1/acct/gw/openai/chat/completions
{"stream":true,"stream_options":{"include_usage":true}}
--- more_headers
x-mock: fixture=openai-chat/stream-tool-call-usage.sse;interval=2
--- response_body eval
main::slurp("openai-chat/stream-tool-call-usage.sse")
--- no_error_log
[error]



=== TEST 5: a client abort mid-stream closes the provider connection
--- request
GET /v1/acct/gw/openai/models
--- response_body_like: "path":"/v1/models"
--- no_error_log
[alert]
[crit]



=== TEST 6: a truncated provider stream is not completed for the client
--- request
GET /v1/acct/gw/openai/models
--- response_body_like: "path":"/v1/models"
--- error_log
upstream prematurely closed connection
