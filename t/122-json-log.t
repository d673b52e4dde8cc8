# Copyright (C) ngx_ai_gateway contributors

# examples/access-log-json.conf, as shipped: every line of the access log
# is one JSON object with the hosted gateway's log fields, the counts and
# the cost of the request, its metadata, and no credential (a Gemini key in
# the query, an Authorization header).

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use Cwd qw(abs_path);
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);
my $J = JSON::PP->new->utf8->canonical;
my $EXAMPLE = abs_path('examples/access-log-json.conf');

sub lines {
    my $want = shift;
    my $file = "$ENV{TEST_NGINX_SERVER_ROOT}/logs/ai.jsonl";
    my $t = time;
    my @l;

    while (time < $t + 5) {
        if (open my $fh, '<', $file) {
            @l = <$fh>;
            return @l if @l >= $want;
        }
        sleep 0.05;
    }

    return @l;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<END);
    include $EXAMPLE;
END

    $block->set_value("config", <<'END');
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider google-ai-studio http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        access_log logs/ai.jsonl ai_gateway_json;
    }
END

    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");
    $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
});

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;

    my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/v1/acct/gw";
    my @r;

    push @r, $HT->request('POST', "$base/openai/chat/completions", {
        headers => { 'content-type' => 'application/json',
                     authorization => 'Bearer sk-SECRET-openai',
                     'x-mock' => 'fixture=openai-chat/text.json',
                     'cf-aig-metadata' => '{"team":"AI","n":1}' },
        content => '{"model":"gpt-4.1-nano","messages":[]}' });

    push @r, $HT->request('POST', "$base/google-ai-studio/v1beta/models/"
                          . 'gemini-2.0-flash:streamGenerateContent'
                          . '?alt=sse&key=AIzaSECRETKEY', {
        headers => { 'content-type' => 'application/json',
                     'x-mock' => 'fixture=google-gemini/stream-text.sse;'
                                 . 'interval=2' },
        content => '{"contents":[]}' });

    push @r, $HT->request('POST', "$base/nope/chat/completions", {
        headers => { 'content-type' => 'application/json' },
        content => '{}' });

    is(join(',', map { $_->{status} } @r), '200,200,400', 'the requests');

    my @l = lines(3);
    is(scalar @l, 3, 'three lines');

    my @j = map { eval { $J->decode($_) } } @l;
    is(scalar(grep { ref $_ eq 'HASH' } @j), 3, 'each line is a JSON object')
        or diag(join '', @l);

    my $all = join '', @l;
    unlike($all, qr/SECRET/, 'no credential in the log');

    my ($o, $g, $e) = @j;

    is_deeply([ @$o{qw(provider model path status_code success cached
                       tokens_in tokens_out cost custom_cost usage_partial
                       metadata step)} ],
              [ 'openai', 'gpt-4.1-nano',
                '/v1/acct/gw/openai/chat/completions', 200,
                JSON::PP::true, JSON::PP::false, '16', '363', '0.0001468',
                JSON::PP::false, JSON::PP::false, '{"team":"AI","n":1}', 0 ],
              'OpenAI: the fields');
    like($o->{id}, qr/^[0-9A-HJKMNP-TV-Z]{26}$/, 'the log id');
    like($o->{created_at}, qr/^\d{4}-\d\d-\d\dT/, 'created_at');
    like($o->{duration}, qr/^\d+$/, 'duration, milliseconds');

    is_deeply([ @$g{qw(provider tokens_in tokens_out cost path)} ],
              [ 'google-ai-studio', '7', '10', '0.0000047',
                '/v1/acct/gw/google-ai-studio/v1beta/models/'
                . 'gemini-2.0-flash:streamGenerateContent' ],
              'Gemini stream: the fields, the path without its query');

    is_deeply([ @$e{qw(status_code success error_code tokens_in cost
                       metadata)} ],
              [ 400, JSON::PP::false, '2008', '', '', '' ],
              'an error: no counts, no cost');
});

run_tests();

__DATA__

=== TEST 1: the example's JSON lines
