# Copyright (C) ngx_ai_gateway contributors

# The Unified API when a translated provider's answer is broken: a 200
# whose body cannot be translated (not JSON, another shape, truncated, cut
# short) is a 502 in the gateway's envelope, retried and fallen back from
# like one, never cached; a stream that ends with an error (a Gemini error
# object outside the SSE framing, an Anthropic error after message_stop)
# or goes on after a finish chunk ends with an error event, without
# [DONE], and is not cached.  Scenarios run in the response body check
# (as in 080): the block's own request only proves nginx is up.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

# gw($path, $body, header => value...): one request, an HTTP::Tiny response
sub gw {
    my ($path, $body, %h) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path";
    return $HT->request('POST', $url, {
        headers => { 'content-type' => 'application/json',
                     authorization => 'Bearer prov-key', %h },
        content => $body,
    });
}

sub compat { gw('/v1/acct/gw/compat/chat/completions', @_) }

# a chat request whose text makes its cache key its own
sub chat {
    my ($model, $text, $extra) = @_;
    $extra //= '';
    return qq({"model":"$model","messages":[{"role":"user","content":"$text"}]$extra});
}

sub reqs { @{ mock_log()->{requests} } }

sub cache_status { $_[0]{headers}{'cf-aig-cache-status'} // '' }

# script(try1 => '...', ...): the x-mock header of a scripted run (090)
my $runs = 0;
sub script {
    my %t = @_;
    $runs++;
    return join ';', "script=s$runs",
        map { my $v = $t{$_}; $v =~ s/;/%3B/g; "$_=$v" } sort keys %t;
}

# a stream's bytes without what changes from one request to the next
sub norm {
    my $s = shift;
    $s =~ s/"id":"chatcmpl-[0-9A-Z]{26}","object":"chat\.completion\.chunk","created":\d+,//g;
    return $s;
}

# the chunks of a stream, after norm()
sub chunk {
    my ($model, $delta, $finish) = @_;
    $finish = defined $finish ? qq("$finish") : 'null';
    return qq(data: {"model":"$model","choices":[{"index":0,"delta":$delta,)
         . qq("finish_reason":$finish,"logprobs":null}]}\n\n);
}

sub error_event {
    my ($message, $type, $code) = @_;
    $code = defined $code ? qq("$code") : 'null';
    return qq(data: {"error":{"message":"$message","type":"$type",)
         . qq("param":null,"code":$code}}\n\n);
}

# the 502 of an answer that is not one: the envelope, never cached; the
# same request again reaches the provider again
sub refused {
    my ($n, $what, $r1, $r2, $message) = @_;
    is($r1->{status}, 502, "$n - $what: 502");
    like($r1->{headers}{'content-type'}, qr{^application/json},
         "$n - $what: JSON");
    is($r1->{headers}{'content-length'}, length $r1->{content},
       "$n - $what: its length");
    my $j = eval { json_decode($r1->{content}) } // {};
    is($j->{error}[0]{code}, 2005, "$n - $what: code 2005");
    is($j->{error}[0]{message}, $message, "$n - $what: the message");
    is(cache_status($r2), 'MISS', "$n - $what: not cached");
    is(scalar(reqs()), 2, "$n - $what: both reach the provider");
}

# a stream that ended badly: the exact bytes, no [DONE], not cached
sub stream_failed {
    my ($n, $r1, $r2, $expected) = @_;
    is($r1->{status}, 200, "$n - 200");
    is(norm($r1->{content}), $expected, "$n - the exact bytes");
    unlike($r1->{content}, qr/\[DONE\]/, "$n - no [DONE]");
    is(cache_status($r1), 'MISS', "$n - a MISS");
    is(cache_status($r2), 'MISS', "$n - not cached: a MISS again");
    is(norm($r2->{content}), $expected, "$n - the same bytes again");
    is(scalar(reqs()), 2, "$n - both reach the provider");
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", "ai_gateway_cache_zone aic:1m;\n");

    my $extra = $block->gateway // '';

    $block->set_value("config", <<END) unless defined $block->config;
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider google-ai-studio http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_cache aic;
        ai_gateway_cache_ttl 60;
        ai_gateway_retry_delay 0;
        $extra
    }
END

    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");

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
            $scenario{$k}->($name);
        }
    }
});

$scenario{'untranslatable answers'} = sub {
    my $n = shift;
    my $i = 0;
    for my $c (['anthropic/claude-x', 'text'],
               ['anthropic/claude-x', 'shape'],
               ['anthropic/claude-x', 'truncated'],
               ['anthropic/claude-x', 'truncated;chunked=1'],
               ['google/gemini-2.5-flash', 'text'],
               ['google/gemini-2.5-flash', 'shape;chunked=1'],
               ['google/gemini-2.5-flash', 'truncated'])
    {
        my ($model, $broken) = @$c;
        my $b = chat($model, 'untranslatable ' . $i++);
        mock_reset();
        my $r1 = compat($b, 'x-mock' => "broken=$broken");
        my $r2 = compat($b, 'x-mock' => "broken=$broken");
        refused($n, "$model $broken", $r1, $r2,
                "The provider's answer could not be translated");
    }

    my $b = '{"model":"google/text-embedding-004","input":"a"}';
    mock_reset();
    my $r1 = gw('/v1/acct/gw/compat/embeddings', $b, 'x-mock' => 'broken=shape');
    my $r2 = gw('/v1/acct/gw/compat/embeddings', $b, 'x-mock' => 'broken=shape');
    refused($n, "embeddings", $r1, $r2,
            "The provider's answer could not be translated");
};

$scenario{'an answer cut short'} = sub {
    my $n = shift;
    for my $broken ('cut', 'cut;chunked=1') {
        my $b = chat('anthropic/claude-x', "cut short $broken");
        mock_reset();
        my $r1 = compat($b, 'x-mock' => "broken=$broken");
        my $r2 = compat($b, 'x-mock' => "broken=$broken");
        refused($n, $broken, $r1, $r2, "The provider's answer was cut short");
    }
};

$scenario{'an answer that stalls'} = sub {
    my $n = shift;
    my $b = chat('google/gemini-2.5-flash', 'stalled');
    mock_reset();
    my $r1 = compat($b, 'x-mock' => 'broken=stall');
    my $r2 = compat($b, 'x-mock' => 'broken=stall');
    is($r1->{status}, 504, "$n - 504");
    my $j = eval { json_decode($r1->{content}) } // {};
    is($j->{error}[0]{code}, 2203, "$n - code 2203");
    is(cache_status($r2), 'MISS', "$n - not cached");
    is(scalar(reqs()), 2, "$n - both reach the provider");
};

$scenario{'a translated answer'} = sub {
    my $n = shift;
    my $b = chat('anthropic/claude-x', 'a good one');
    mock_reset();
    my $r1 = compat($b, 'x-mock' => 'fixture=anthropic/text.json');
    my $r2 = compat($b, 'x-mock' => 'fixture=anthropic/text.json');
    is($r1->{status}, 200, "$n - 200");
    is($r1->{headers}{'content-length'}, length $r1->{content},
       "$n - a Content-Length: the translated body's");
    like($r1->{content}, qr/^\{"id":"chatcmpl-.*"content":"Hello!/,
         "$n - the chat.completion");
    is(cache_status($r1), 'MISS', "$n - a MISS");
    is(cache_status($r2), 'HIT', "$n - then a HIT");
    is($r2->{content}, $r1->{content}, "$n - the same body");
    is(scalar(reqs()), 1, "$n - one upstream request");
};

$scenario{'retried'} = sub {
    my $n = shift;
    for my $broken ('text', 'truncated', 'cut') {
        my $b = chat('anthropic/claude-x', "retried $broken");
        mock_reset();
        my $r = compat($b, 'cf-aig-max-attempts' => 2,
                       'x-mock' => script(try1 => "broken=$broken",
                                          try2 => 'fixture=anthropic/text.json'));
        is($r->{status}, 200, "$n - $broken: the second attempt answers");
        like($r->{content}, qr/^\{"id":"chatcmpl-.*"content":"Hello!/,
             "$n - $broken: its chat.completion");
        is($r->{headers}{'content-length'}, length $r->{content},
           "$n - $broken: its length");
        is(scalar(reqs()), 2, "$n - $broken: two upstream requests");
    }

    my $b = chat('google/gemini-2.5-flash', 'retried twice');
    mock_reset();
    my $r = compat($b, 'cf-aig-max-attempts' => 2,
                   'x-mock' => 'broken=shape');
    is($r->{status}, 502, "$n - every attempt untranslatable: 502");
    like($r->{content}, qr/"code":2005/, "$n - code 2005");
    is(scalar(reqs()), 2, "$n - both attempts made");
};

$scenario{'fallback'} = sub {
    my $n = shift;
    my $step = sub {
        my ($text, $mock) = @_;
        return { provider => 'compat', endpoint => 'chat/completions',
                 headers => { authorization => 'Bearer prov-key',
                              'x-mock' => $mock },
                 query => json_decode(chat('anthropic/claude-x', $text)) };
    };
    mock_reset();
    my $r = gw('/v1/acct/gw', JSON::PP->new->canonical->encode([
                   $step->('fallback 0', 'broken=shape'),
                   $step->('fallback 1', 'fixture=anthropic/text.json') ]));
    is($r->{status}, 200, "$n - the second step answers");
    is($r->{headers}{'cf-aig-step'}, '1', "$n - cf-aig-step: 1");
    like($r->{content}, qr/^\{"id":"chatcmpl-.*"content":"Hello!/,
         "$n - its chat.completion");
    is(scalar(reqs()), 2, "$n - two upstream requests");
};

$scenario{'gemini error part-way'} = sub {
    my $n = shift;
    my $m = 'gemini-2.5-flash';
    my $b = chat("google/$m", 'gemini error', ',"stream":true');
    mock_reset();
    my $r1 = compat($b, 'x-mock' => 'broken=gemini-error;interval=2');
    my $r2 = compat($b, 'x-mock' => 'broken=gemini-error;interval=2');
    stream_failed($n, $r1, $r2,
                  chunk($m, '{"role":"assistant","content":""}')
                  . chunk($m, '{"content":"Hello"}')
                  . chunk($m, '{"content":" world"}')
                  . chunk($m, '{}', 'stop')
                  . error_event('The operation was cancelled.',
                                'invalid_request_error', 'CANCELLED'));
};

$scenario{'gemini text after finish'} = sub {
    my $n = shift;
    my $m = 'gemini-2.5-flash';
    my $b = chat("google/$m", 'gemini late', ',"stream":true');
    mock_reset();
    my $r1 = compat($b, 'x-mock' => 'broken=gemini-late;interval=2');
    my $r2 = compat($b, 'x-mock' => 'broken=gemini-late;interval=2');
    stream_failed($n, $r1, $r2,
                  chunk($m, '{"role":"assistant","content":""}')
                  . chunk($m, '{"content":"Hello"}')
                  . chunk($m, '{}', 'stop')
                  . error_event('the provider sent content after the end '
                                . 'of a choice', 'server_error'));
};

$scenario{'anthropic error after message_stop'} = sub {
    my $n = shift;
    my $m = 'claude-x';
    my $b = chat("anthropic/$m", 'anthropic error',
                 ',"stream":true,"stream_options":{"include_usage":true}');
    mock_reset();
    my $r1 = compat($b, 'x-mock' => 'broken=anthropic-error;interval=2');
    my $r2 = compat($b, 'x-mock' => 'broken=anthropic-error;interval=2');
    stream_failed($n, $r1, $r2,
                  chunk($m, '{"role":"assistant","content":""}')
                  . chunk($m, '{"content":"Hello"}')
                  . chunk($m, '{}', 'stop')
                  . error_event('Overloaded', 'server_error',
                                'overloaded_error'));
};

$scenario{'anthropic text after message_stop'} = sub {
    my $n = shift;
    my $m = 'claude-x';
    my $b = chat("anthropic/$m", 'anthropic late', ',"stream":true');
    mock_reset();
    my $r1 = compat($b, 'x-mock' => 'broken=anthropic-late;interval=2');
    my $r2 = compat($b, 'x-mock' => 'broken=anthropic-late;interval=2');
    stream_failed($n, $r1, $r2,
                  chunk($m, '{"role":"assistant","content":""}')
                  . chunk($m, '{"content":"Hello"}')
                  . chunk($m, '{}', 'stop')
                  . error_event('the provider sent content after the end '
                                . 'of a choice', 'server_error'));
};

run_tests();

__DATA__

=== TEST 1: untranslatable answers

=== TEST 2: an answer cut short

=== TEST 3: an answer that stalls
--- gateway
ai_gateway_read_timeout 1s;

=== TEST 4: a translated answer

=== TEST 5: retried

=== TEST 6: fallback

=== TEST 7: gemini error part-way

=== TEST 8: gemini text after finish

=== TEST 9: anthropic error after message_stop

=== TEST 10: anthropic text after message_stop
