# Copyright (C) ngx_ai_gateway contributors

# Usage and cost through a real nginx: each provider family's recorded
# answers (streamed and not) give exact token counts and costs in the
# $ai_gateway_* variables (read through access_log), on the provider
# routes and the Unified API; a stream the client leaves after its first
# event and a stream the provider cuts give lower bounds marked partial;
# a streamed OpenAI request that does not ask for usage gets it counted,
# without the client seeing the usage chunk; a cache hit costs 0; a
# retried request and a Universal Endpoint fallback count their answer;
# cf-aig-custom-cost replaces the price table.  Every request through
# gw() is also read back from the Logs API: its log record carries the
# same counts, cost and flags as the variables.

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

my @VARS = qw(tokens_in tokens_out tokens_cached tokens_cache_write
              tokens_reasoning cost custom_cost cached usage_partial);

my $FORMAT = join '|', '$http_x_case', '$status',
                       map { "\$ai_gateway_$_" } @VARS;

my $CASE = 0;

sub slurp {
    my $f = shift;
    open my $fh, '<:raw', "t/fixtures/$f" or die "$f: $!";
    local $/;
    return <$fh>;
}

# POST to the gateway: the response and the access log line of the request
sub gw {
    my ($path, $body, %h) = @_;
    my $case = 'c' . ++$CASE;

    $body = $J->encode($body) if ref $body;

    my $r = $HT->request('POST',
                         "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
                         { headers => { 'content-type' => 'application/json',
                                        'x-case' => $case,
                                        'cf-aig-event-id' => $case, %h },
                           content => $body });

    my $line = log_line($case);

    record_is($case, $line, "$case ($path): the log record");

    return ($r, $line);
}

# the request's log record, read through the Logs API, says what the
# variables say: "in|out|cached|cache write|reasoning|cost|custom|cached|
# partial"
sub record_is {
    my ($case, $line, $name) = @_;
    my ($rec, $t) = (undef, time);

    # found by its event id (a cut answer's client has no headers)
    my $q = '[{"key":"event_id","operator":"eq","value":["' . $case . '"]}]';
    $q =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;

    while (time < $t + 5) {
        my $g = $HT->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
                         . "/client/v4/accounts/acct/ai-gateway/gateways/gw/"
                         . "logs?filters=$q");
        if ($g->{status} == 200) {
            my $l = $J->decode($g->{content})->{result};
            if (@$l) {
                # a retried request or a Universal fallback has a record
                # per attempt, with the same event id and, when both
                # started in one millisecond, the same created_at: the
                # request's is the answering one
                ($rec) = grep { $_->{success} } @$l;
                $rec ||= $l->[0];
                last;
            }
        }
        sleep 0.05;
    }

    unless ($rec) {
        fail("$name: no record");
        return;
    }

    my $u = $rec->{usage};
    my $num = sub { defined $_[0] ? 0 + $_[0] : '' };
    my $b = sub { $_[0] ? 'true' : 'false' };

    my @want = split /\|/, $line, -1;
    $want[5] = 0 + $want[5] if length $want[5];

    my @got = ($num->($rec->{tokens_in}), $num->($rec->{tokens_out}),
               $u ? ($u->{cached_tokens}, $u->{cache_write_tokens},
                     $u->{reasoning_tokens}) : ('', '', ''),
               $num->($rec->{cost}), $b->($rec->{custom_cost}),
               $b->($rec->{cached}), $b->($u && $u->{partial}));

    is(join('|', @got), join('|', @want), $name);
}

# the log line of a case, once it is written: "in|out|...|partial"
sub log_line {
    my $case = shift;
    my $file = "$ENV{TEST_NGINX_SERVER_ROOT}/logs/usage.log";
    my $t = time;

    while (time < $t + 5) {
        if (open my $fh, '<', $file) {
            for my $line (<$fh>) {
                chomp $line;
                my @f = split /\|/, $line, -1;
                next unless $f[0] eq $case;
                return join '|', @f[2 .. $#f];
            }
        }
        sleep 0.05;
    }

    return "no log line for $case";
}

sub chat {
    my ($model, %more) = @_;
    return { model => $model,
             messages => [ { role => 'user', content => 'hi' } ], %more };
}

my $V = '/v1/acct/gw';

# [name, path, x-mock, body, expected "in|out|cached|cache write|reasoning|
#  cost|custom|cached|partial", more headers]

my @FAMILIES = (

    # OpenAI and the OpenAI-compatible providers

    [ 'openai chat', "$V/openai/chat/completions",
      'fixture=openai-chat/text.json', chat('gpt-4.1-nano'),
      '16|363|0|0|0|0.0001468|false|false|false' ],
    [ 'openai chat stream, usage asked',
      "$V/openai/chat/completions",
      'fixture=openai-chat/stream-text-usage.sse;interval=2',
      chat('gpt-4o', stream => JSON::PP::true,
           stream_options => { include_usage => JSON::PP::true }),
      '14|30|0|0|0|0.000335|false|false|false' ],
    [ 'openai chat stream, reasoning (Azure recording)',
      "$V/openai/chat/completions",
      'fixture=openai-chat/stream-azure-content-filter-usage.chunks.txt;'
      . 'interval=2',
      chat('gpt-5-nano', stream => JSON::PP::true,
           stream_options => { include_usage => JSON::PP::true }),
      '15|78|0|0|64|0.00003195|false|false|false' ],
    [ 'openai embeddings', "$V/openai/embeddings",
      'fixture=openai-embeddings/embedding.json',
      { model => 'text-embedding-3-small', input => ['a', 'b'] },
      '12|0|0|0|0|0.00000024|false|false|false' ],
    [ 'openai responses', "$V/openai/responses",
      'fixture=openai-responses/text.json',
      { model => 'gpt-5-mini', input => 'hi' },
      '36|87|12|0|64|0.0001803|false|false|false' ],
    [ 'openai responses stream', "$V/openai/responses",
      'fixture=openai-responses/stream-text.chunks.txt;format=responses;'
      . 'interval=2',
      { model => 'gpt-5-mini', input => 'hi', stream => JSON::PP::true },
      '36|87|12|0|64|0.0001803|false|false|false' ],
    [ 'groq', "$V/groq/chat/completions",
      'fixture=openai-compatible/groq-tool-call.json',
      chat('llama-3.3-70b-versatile'),
      '218|15|0|0|0|0.00014047|false|false|false' ],
    [ 'groq stream (x_groq.usage)', "$V/groq/chat/completions",
      'fixture=openai-compatible/groq-tool-call.chunks.txt;interval=2',
      chat('llama-3.3-70b-versatile', stream => JSON::PP::true),
      '210|15|0|0|0|0.00013575|false|false|false' ],
    [ 'deepseek: cache hits, reasoning', "$V/deepseek/chat/completions",
      'fixture=openai-compatible/deepseek-tool-call.json',
      chat('deepseek-reasoner'),
      '339|92|320|0|48|0.00005292|false|false|false' ],
    [ 'xai: reasoning apart from completion', "$V/grok/v1/chat/completions",
      'fixture=openai-compatible/xai-tool-call.json', chat('grok-3-mini'),
      '291|215|244|0|189|0.0001399|false|false|false' ],
    [ 'mistral', "$V/mistral/v1/chat/completions",
      'fixture=mistral/text.json', chat('mistral-small-latest'),
      '13|434|0|0|0|0.0001315|false|false|false' ],
    [ 'mistral stream', "$V/mistral/v1/chat/completions",
      'fixture=mistral/text.chunks.txt;interval=2',
      chat('mistral-small-latest', stream => JSON::PP::true),
      '13|8|0|0|0|0.0000037|false|false|false' ],
    [ 'workers ai', "$V/workers-ai/\@cf/meta/llama-3.1-8b-instruct",
      'fixture=workers-ai/text.json', { prompt => 'hi' },
      '18|10|0|0|0|0.000013346|false|false|false' ],
    [ 'workers ai stream', "$V/workers-ai/\@cf/meta/llama-3.1-8b-instruct",
      'fixture=workers-ai/stream-text.sse;interval=2',
      { prompt => 'hi', stream => JSON::PP::true },
      '18|7|0|0|0|0.000010865|false|false|false' ],

    # Anthropic

    [ 'anthropic', "$V/anthropic/v1/messages",
      'fixture=anthropic/text.json', chat('claude-sonnet-4-5'),
      '12|29|0|0|0|0.000471|false|false|false' ],
    [ 'anthropic stream', "$V/anthropic/v1/messages",
      'fixture=anthropic/text.chunks.txt;interval=2',
      chat('claude-sonnet-4-5', stream => JSON::PP::true),
      '12|30|0|0|0|0.000486|false|false|false' ],
    [ 'anthropic prompt cache', "$V/anthropic/v1/messages",
      'fixture=anthropic/cache-usage.json', chat('claude-3-5-sonnet-latest'),
      '2584|150|2048|512|0|0.0048564|false|false|false' ],
    [ 'anthropic prompt cache, stream', "$V/anthropic/v1/messages",
      'fixture=anthropic/cache-usage.chunks.txt;interval=2',
      chat('claude-3-5-sonnet-latest', stream => JSON::PP::true),
      '2584|150|2048|512|0|0.0048564|false|false|false' ],
    [ 'anthropic: input counted again in message_delta',
      "$V/anthropic/v1/messages",
      'fixture=anthropic/message-delta-input-tokens.chunks.txt;interval=2',
      chat('claude-opus-4-5', stream => JSON::PP::true),
      '61|2|0|0|0|0.000355|false|false|false' ],

    # Gemini, Vertex AI

    [ 'gemini: thoughts', "$V/google-ai-studio/v1beta/models/"
      . 'gemini-3-pro-preview:generateContent',
      'fixture=google-gemini/text.json', { contents => [] },
      '9|272|0|0|244|0.003282|false|false|false' ],
    [ 'gemini stream', "$V/google-ai-studio/v1beta/models/"
      . 'gemini-2.0-flash:streamGenerateContent?alt=sse',
      'fixture=google-gemini/stream-text.sse;interval=2', { contents => [] },
      '7|10|0|0|0|0.0000047|false|false|false' ],
    [ 'vertex ai: the model of the path', "$V/google-vertex-ai/v1/projects/"
      . 'p1/locations/us-central1/publishers/google/models/'
      . 'gemini-2.0-flash-001:generateContent',
      'fixture=google-gemini/text.json', { contents => [] },
      '9|272|0|0|244|0.0001097|false|false|false',
      { authorization => 'Bearer ya29.token' } ],

    # Bedrock

    [ 'bedrock converse', "$V/aws-bedrock/bedrock-runtime/us-east-1/model/"
      . 'anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse',
      'fixture=bedrock/converse-text.json', { messages => [] },
      '22|57|0|0|0|0.000921|false|false|false' ],
    [ 'bedrock converse-stream', "$V/aws-bedrock/bedrock-runtime/us-east-1/"
      . 'model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream',
      'fixture=bedrock/converse-stream-live.eventstream.bin;interval=2',
      { messages => [] },
      '12|5|0|0|0|0.000111|false|false|false' ],
    [ 'bedrock invoke, an Anthropic model',
      "$V/aws-bedrock/bedrock-runtime/us-east-1/model/"
      . 'anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke',
      'fixture=anthropic/text.json', { messages => [] },
      '12|29|0|0|0|0.000471|false|false|false' ],
    [ 'bedrock invoke-with-response-stream, an Anthropic model',
      "$V/aws-bedrock/bedrock-runtime/us-east-1/model/"
      . 'anthropic.claude-3-5-haiku-20241022-v1%3A0/'
      . 'invoke-with-response-stream',
      'fixture=bedrock/invoke-stream-anthropic.eventstream.bin;interval=2',
      { messages => [] },
      '25|9|0|0|0|0.000056|false|false|false' ],
    [ 'bedrock invoke, counts in the headers only',
      "$V/aws-bedrock/bedrock-runtime/us-east-1/model/"
      . 'meta.llama3-1-8b-instruct-v1%3A0/invoke',
      'header=x-amzn-bedrock-input-token-count:31;'
      . 'header=x-amzn-bedrock-output-token-count:44',
      { prompt => 'hi' },
      '31|44|0|0|0|0.0000165|false|false|false' ],

    # Cohere

    [ 'cohere v2: billed units', "$V/cohere/v2/chat",
      'fixture=cohere/text.json', chat('command-a-03-2025'),
      '12|7|0|0|0|0.0001|false|false|false' ],
    [ 'cohere v2 stream', "$V/cohere/v2/chat",
      'fixture=cohere/text.chunks.txt;interval=2',
      chat('command-a-03-2025', stream => JSON::PP::true),
      '12|7|0|0|0|0.0001|false|false|false' ],

    # the Unified API: translated (counted by the translator), and relayed

    [ 'compat anthropic', "$V/compat/chat/completions",
      'fixture=anthropic/cache-usage.json',
      chat('anthropic/claude-3-5-sonnet-20241022'),
      '2584|150|2048|512|0|0.0048564|false|false|false',
      { authorization => 'Bearer sk-ant' } ],
    [ 'compat anthropic stream', "$V/compat/chat/completions",
      'fixture=anthropic/cache-usage.chunks.txt;interval=2',
      chat('anthropic/claude-3-5-sonnet-20241022', stream => JSON::PP::true),
      '2584|150|2048|512|0|0.0048564|false|false|false',
      { authorization => 'Bearer sk-ant' } ],
    [ 'compat gemini', "$V/compat/chat/completions",
      'fixture=google-gemini/text.json',
      chat('google-ai-studio/gemini-2.0-flash'),
      '9|272|0|0|244|0.0001097|false|false|false',
      { authorization => 'Bearer g-key' } ],
    [ 'compat groq (relayed)', "$V/compat/chat/completions",
      'fixture=openai-compatible/groq-tool-call.json',
      chat('groq/llama-3.3-70b-versatile'),
      '218|15|0|0|0|0.00014047|false|false|false',
      { authorization => 'Bearer gsk' } ],

    # no counts, no price

    [ 'an error answer: no counts, no cost', "$V/openai/chat/completions",
      'fixture=openai-chat/error-400-unsupported-parameter.json',
      chat('o3'), '||||||false|false|false' ],
    [ 'counts without a price: no cost', "$V/anthropic/v1/messages",
      'fixture=anthropic/stream-text.sse;interval=2',
      chat('claude-opus-4-8', stream => JSON::PP::true),
      '11|6|0|0|0||false|false|false' ],
);

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<END);
    \$TEST_NGINX_PROVIDER_UPSTREAMS
    log_format usage escape=none '$FORMAT';
    ai_gateway_cache_zone aic:1m;
    ai_gateway_log_zone aigl:4m;
END

    $block->set_value("config", <<END);
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        \$TEST_NGINX_TLS_CONFIG
        ai_gateway_cache aic;
        ai_gateway_retry_delay 0;
        ai_gateway_logs aigl;
        access_log logs/usage.log usage;
    }
    location /client/v4/ {
        ai_gateway_api;
    }
    location /off/ {
        rewrite ^/off(/.*)\$ \$1 break;
        ai_gateway gw;
        \$TEST_NGINX_TLS_CONFIG
        ai_gateway_usage off;
        ai_gateway_logs aigl;
        access_log logs/usage.log usage;
    }
    location /noinject/ {
        rewrite ^/noinject(/.*)\$ \$1 break;
        ai_gateway gw;
        \$TEST_NGINX_TLS_CONFIG
        ai_gateway_include_usage off;
        ai_gateway_logs aigl;
        access_log logs/usage.log usage;
    }
END

    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");
    $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
});


# the usage chunk of stream-text-usage.sse, and the fixture without it
my $SSE = slurp('openai-chat/stream-text-usage.sse');
my ($USAGE_CHUNK) = $SSE =~ /(data: \{[^\n]*"choices":\[\],"usage"[^\n]*\n\n)/;
(my $SSE_WITHOUT = $SSE) =~ s/\Q$USAGE_CHUNK\E//;

sub families {
    for my $c (@FAMILIES) {
        my ($name, $path, $mock, $body, $want, $h) = @$c;
        my ($r, $got) = gw($path, $body, 'x-mock' => $mock, %{ $h // {} });

        is($got, $want, "$name: in|out|cached|cache write|reasoning|cost|"
                        . "custom|cached|partial");
    }
}

# a stream that does not ask for usage: include_usage is added for the
# provider, the usage chunk is counted and left out of what the client gets
sub include_usage {
    for my $route (['openai', "$V/openai/chat/completions", 'gpt-4o'],
                   ['compat', "$V/compat/chat/completions", 'openai/gpt-4o'])
    {
        my ($name, $path, $model) = @$route;

        mock_reset();

        my ($r, $got) = gw($path, chat($model, stream => JSON::PP::true),
                           'x-mock' => 'fixture=openai-chat/'
                                       . 'stream-text-usage.sse;interval=2',
                           authorization => 'Bearer sk-test');

        is($got, '14|30|0|0|0|0.000335|false|false|false',
           "$name: a stream without include_usage is counted");
        ok(length $USAGE_CHUNK, "$name: the fixture has a usage chunk");
        is($r->{content}, $SSE_WITHOUT,
           "$name: the client gets the stream without the usage chunk");

        my $q = mock_log()->{requests}[-1];
        my $sent = eval { $J->decode($q->{body}) } // {};
        is_deeply($sent->{stream_options}, { include_usage => JSON::PP::true },
                  "$name: the provider was asked for usage");
        is($sent->{model}, 'gpt-4o', "$name: the rest of the body kept");
    }

    # include_usage: false, made true; the chunk left out all the same

    mock_reset();

    my $body = '{"model":"gpt-4o","stream":true,'
               . '"stream_options":{"include_usage":false},"messages":[]}';
    my ($r, $got) = gw("$V/openai/chat/completions", $body,
                       'x-mock' => 'fixture=openai-chat/'
                                   . 'stream-text-usage.sse;interval=2');

    is($got, '14|30|0|0|0|0.000335|false|false|false',
       'include_usage false: counted');
    is($r->{content}, $SSE_WITHOUT, 'include_usage false: no usage chunk');
    (my $want = $body) =~ s/false/true/;
    is(mock_log()->{requests}[-1]{body}, $want,
       'include_usage false: only "false" changed');

    # a body sent as it is: ai_gateway_include_usage off, usage asked, a
    # provider that is not asked, not a stream

    for my $c (['/noinject', 'openai', '{"model":"gpt-4o","stream":true}'],
               ['', 'openai', '{"model":"gpt-4o","stream":true,'
                              . '"stream_options":{"include_usage":true}}'],
               ['', 'mistral', '{"model":"mistral-small","stream":true}'],
               ['', 'openai', '{"model":"gpt-4o","stream":false}'])
    {
        my ($prefix, $provider, $b) = @$c;

        mock_reset();

        ($r, $got) = gw("$prefix$V/$provider/chat/completions", $b,
                        'x-mock' => 'fixture=openai-chat/'
                                    . 'stream-text-usage.sse;interval=2');

        is(mock_log()->{requests}[-1]{body}, $b,
           "$prefix $provider $b: the body is sent as it is");
        is($r->{content}, $SSE, "$prefix $provider $b: the stream as it is");
        is($got, $provider eq 'openai'
                 ? '14|30|0|0|0|0.000335|false|false|false'
                 : '14|30|0|0|0||false|false|false',
           "$prefix $provider $b: counted (a Mistral model it is not)");
    }

    # a body larger than nginx keeps in memory (a temporary file)

    mock_reset();

    my $big = { model => 'gpt-4o', stream => JSON::PP::true,
                messages => [ { role => 'user', content => 'x' x 100000 } ] };
    ($r, $got) = gw("$V/openai/chat/completions", $big,
                    'x-mock' => 'fixture=openai-chat/stream-text-usage.sse;'
                                . 'interval=2');

    is($got, '14|30|0|0|0|0.000335|false|false|false', 'a large body');
    is($r->{content}, $SSE_WITHOUT, 'a large body: no usage chunk');
    is(mock_log()->{requests}[-1]{body_len},
       length($J->encode($big)) + length('"stream_options":'
                                         . '{"include_usage":true},'),
       'a large body: include_usage added');
}

# the client leaves after the first event; the provider cuts a stream
sub partial {
    my $req = sub {
        my ($path, $mock, $body) = @_;
        my $case = 'c' . ++$CASE;
        return ($case, "POST $path HTTP/1.1\r\nHost: localhost\r\n"
                       . "x-mock: $mock\r\nx-case: $case\r\n"
                       . "cf-aig-event-id: $case\r\n"
                       . "Content-Type: application/json\r\n"
                       . "Content-Length: " . length($body) . "\r\n"
                       . "Connection: close\r\n\r\n$body");
    };

    # Anthropic: the input is known from message_start; output at least 1

    my ($case, $raw) = $req->("$V/anthropic/v1/messages",
                              'fixture=anthropic/cache-usage.chunks.txt;'
                              . 'interval=400',
                              '{"model":"claude-3-5-sonnet","stream":true}');
    my $s = stream_request($raw, abort_after => 1);
    like($s->{events}[0][1] // '', qr/message_start/,
         'the client got the first event');

    is(log_line($case), '2584|1|2048|512|0|0.0026214|false|false|true',
       'a client that leaves after the first event: what was seen, partial');
    record_is($case, log_line($case), 'the client left: the log record');

    # OpenAI, the usage chunk never came: one content chunk seen

    ($case, $raw) = $req->("$V/openai/chat/completions",
                           'fixture=openai-chat/stream-text-usage.sse;'
                           . 'interval=400',
                           '{"model":"gpt-4o","stream":true}');
    $s = stream_request($raw, abort_after => 2);

    like(log_line($case), qr/^0\|[12]\|0\|0\|0\|0\.0000[12]\|false\|false\|true$/,
         'OpenAI, the client left: the content chunks seen, partial');
    record_is($case, log_line($case), 'OpenAI, the client left: the record');

    # the provider cuts the stream after 5 events

    my ($r, $got) = gw("$V/openai/chat/completions",
                       chat('gpt-4o', stream => JSON::PP::true,
                            stream_options => { include_usage =>
                                                JSON::PP::true }),
                       'x-mock' => 'fixture=openai-chat/stream-text-usage.sse;'
                                   . 'interval=2;close_after=5');

    is($got, '0|4|0|0|0|0.00004|false|false|true',
       'OpenAI cut by the provider after 5 events: 4 content chunks');

    ($r, $got) = gw("$V/anthropic/v1/messages",
                    chat('claude-3-5-sonnet', stream => JSON::PP::true),
                    'x-mock' => 'fixture=anthropic/cache-usage.chunks.txt;'
                                . 'interval=2;close_after=5');

    is($got, '2584|2|2048|512|0|0.0026364|false|false|true',
       'Anthropic cut by the provider: message_start and 2 deltas');

    ($r, $got) = gw("$V/compat/chat/completions",
                    chat('anthropic/claude-3-5-sonnet-20241022',
                         stream => JSON::PP::true),
                    'x-mock' => 'fixture=anthropic/cache-usage.chunks.txt;'
                                . 'interval=2;close_after=5',
                    authorization => 'Bearer sk-ant');

    is($got, '2584|1|2048|512|0|0.0026214|false|false|true',
       'compat, cut by the provider: what the translator saw, partial');

    # a whole answer cut: nothing seen, partial

    ($r, $got) = gw("$V/openai/chat/completions", chat('gpt-4o'),
                    'x-mock' => 'cut=100;size=1000');

    is($got, '0|0|0|0|0|0|false|false|true', 'a cut JSON answer: partial');
}

# a cache hit costs 0; a retried request and a Universal fallback count
# their answer
sub paths {
    my %h = ('x-mock' => 'fixture=openai-chat/text.json',
             'cf-aig-cache-ttl' => 60);
    my $body = chat('gpt-4.1-nano', n => rand());

    my ($r, $got) = gw("$V/openai/chat/completions", $body, %h);
    is($got, '16|363|0|0|0|0.0001468|false|false|false', 'a cache miss');
    is($r->{headers}{'cf-aig-cache-status'}, 'MISS', 'MISS');

    ($r, $got) = gw("$V/openai/chat/completions", $body, %h);
    is($r->{headers}{'cf-aig-cache-status'}, 'HIT', 'HIT');
    is($got, '0|0|0|0|0|0|false|true|false', 'a cache hit: 0 tokens, cost 0');

    ($r, $got) = gw("$V/openai/chat/completions", $body, %h,
                    'cf-aig-custom-cost' => '{"total_cost":3}');
    is($got, '0|0|0|0|0|0|false|true|false', 'a cache hit: custom cost too');

    # retries: a 503, then the answer

    mock_reset();

    ($r, $got) = gw("$V/openai/chat/completions", chat('gpt-4.1-nano'),
                    'x-mock' => 'script=usage1;try1=status%3D503;'
                                . 'try2=fixture%3Dopenai-chat/text.json',
                    'cf-aig-max-attempts' => 2);
    is($r->{status}, 200, 'retried: 200');
    is($got, '16|363|0|0|0|0.0001468|false|false|false',
       'a retried request: its answer counted');

    # a streamed answer of an attempt (request timeout)

    ($r, $got) = gw("$V/anthropic/v1/messages",
                    chat('claude-3-5-sonnet', stream => JSON::PP::true),
                    'x-mock' => 'fixture=anthropic/cache-usage.chunks.txt;'
                                . 'interval=2',
                    'cf-aig-request-timeout' => 5000);
    is($got, '2584|150|2048|512|0|0.0048564|false|false|false',
       'a streamed attempt');

    # the Universal Endpoint: a failing step, then Anthropic

    my $steps = [
        { provider => 'openai', endpoint => 'chat/completions',
          headers => { 'x-mock' => 'status=500' },
          query => chat('gpt-4o') },
        { provider => 'anthropic', endpoint => 'v1/messages',
          headers => { 'x-mock' => 'fixture=anthropic/text.json' },
          query => chat('claude-sonnet-4-5') },
    ];

    ($r, $got) = gw($V, $steps);
    is($r->{headers}{'cf-aig-step'}, '1', 'Universal: step 1 answered');
    is($got, '12|29|0|0|0|0.000471|false|false|false',
       'a Universal fallback: the answering step counted');

    # the Universal Endpoint: an OpenAI stream step without include_usage

    mock_reset();

    $steps = [ { provider => 'openai', endpoint => 'chat/completions',
                 headers => { 'x-mock' => 'fixture=openai-chat/'
                                          . 'stream-text-usage.sse;'
                                          . 'interval=2' },
                 query => chat('gpt-4o', stream => JSON::PP::true) } ];

    ($r, $got) = gw($V, $steps);
    is($got, '14|30|0|0|0|0.000335|false|false|false',
       'a Universal stream step: counted');
    is($r->{content}, $SSE_WITHOUT, 'a Universal stream step: no chunk');
}

# cf-aig-custom-cost; ai_gateway_usage off
sub custom {
    my @c = (
        [ '{"per_token_in":0.000001,"per_token_out":0.000002}',
          '16|363|0|0|0|0.000742|true|false|false' ],
        [ '{"per_token_in":1e-6,"per_token_out":2e-6}',
          '16|363|0|0|0|0.000742|true|false|false' ],
        [ '{"total_cost":0.5}', '16|363|0|0|0|0.5|true|false|false' ],
        [ '{"per_token_out":0.001}', '16|363|0|0|0|0.363|true|false|false' ],
        [ '{"per_token_in":"x"}',
          '16|363|0|0|0|0.0001468|false|false|false' ],
        [ 'not json', '16|363|0|0|0|0.0001468|false|false|false' ],
    );

    for my $c (@c) {
        my ($r, $got) = gw("$V/openai/chat/completions", chat('gpt-4.1-nano'),
                           'x-mock' => 'fixture=openai-chat/text.json',
                           'cf-aig-custom-cost' => $c->[0]);
        is($r->{status}, 200, "custom cost $c->[0]: 200");
        is($got, $c->[1], "custom cost $c->[0]");
    }

    # no token data: no cost, custom or not

    my ($r, $got) = gw("$V/openai/chat/completions", chat('gpt-4o'),
                       'cf-aig-custom-cost' => '{"total_cost":0.5}');
    is($got, '||||||false|false|false', 'custom cost without tokens: none');

    # custom cost on the Unified API

    ($r, $got) = gw("$V/compat/chat/completions",
                    chat('anthropic/claude-3-5-sonnet-20241022'),
                    'x-mock' => 'fixture=anthropic/cache-usage.json',
                    authorization => 'Bearer sk-ant',
                    'cf-aig-custom-cost' => '{"per_token_in":0.000001,'
                                            . '"per_token_out":0.00001}');
    is($got, '2584|150|2048|512|0|0.004084|true|false|false',
       'custom cost: cached and cache writes at per_token_in');

    # ai_gateway_usage off: nothing counted, nothing added

    mock_reset();

    ($r, $got) = gw("/off$V/openai/chat/completions",
                    '{"model":"gpt-4o","stream":true}',
                    'x-mock' => 'fixture=openai-chat/stream-text-usage.sse;'
                                . 'interval=2');
    is($got, '||||||false|false|false', 'ai_gateway_usage off');
    is(mock_log()->{requests}[-1]{body}, '{"model":"gpt-4o","stream":true}',
       'ai_gateway_usage off: the body as it is');
    is($r->{content}, $SSE, 'ai_gateway_usage off: the stream as it is');
}

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;

    my $name = $block->name;

    families() if $name =~ /family/;
    include_usage() if $name =~ /include_usage/;
    partial() if $name =~ /partial/;
    paths() if $name =~ /cache hit/;
    custom() if $name =~ /custom cost/;
});

run_tests();

__DATA__

=== TEST 1: every provider family, streamed and not

=== TEST 2: include_usage added and its chunk left out

=== TEST 3: partial counts: the client leaves, the provider cuts

=== TEST 4: a cache hit, retries, the Universal Endpoint

=== TEST 5: custom cost, accounting off
