# Copyright (C) ngx_ai_gateway contributors

# Google Vertex AI: a base64 service-account key in "Authorization: Bearer"
# is exchanged for an OAuth token (an RS256 JWT, verified by the mock as
# Google does) and the token is cached; the Unified API routes
# google-vertex-ai/google/{model} to the project and region of the key and
# translates like Gemini.  Every request is traced at the mock: the token
# exchanges by the JWT's issuer, the provider calls by an x-test header.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use JSON::PP ();
use MIME::Base64 qw(encode_base64);

repeat_each(1);
no_shuffle();
no_long_string();

# the base64 of a service-account JSON key; fields given as undef are left out
sub sa {
    my (%f) = @_;
    open my $fh, '<', "$ENV{TEST_NGINX_CERT_DIR}/sa.key" or die "sa.key: $!";
    my $key = do { local $/; <$fh> };
    my %sa = (
        type => 'service_account', project_id => 'my-proj',
        private_key_id => 'kid-1', private_key => $key,
        client_email => 'gw@my-proj.iam.gserviceaccount.com',
        client_id => '1234', auth_uri => 'https://accounts.google.com/o/oauth2/auth',
        token_uri => 'https://oauth2.googleapis.com/token',
        region => 'us-central1', %f);
    delete $sa{$_} for grep { !defined $sa{$_} } keys %sa;
    return encode_base64(JSON::PP->new->canonical->encode(\%sa), '');
}

sub chat {
    my ($model, $extra) = @_;
    $extra //= '';
    return "POST /v1/acct/gw/compat/chat/completions\n"
         . qq({"model":"$model","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]$extra});
}

# what reached the mock for one test: token exchanges of the issuer $tag,
# and provider calls with "x-test: $tag", in order
sub trail {
    my ($tag) = @_;
    my $log = mock_log();
    my @out;
    for my $q (@{ $log->{requests} }) {
        if ($q->{jwt} && $q->{jwt}{claims}{iss} =~ /^\Q$tag\E@/) {
            push @out, "token $q->{method} $q->{headers}{host}$q->{path} "
                . "kid=$q->{jwt}{header}{kid} status=$q->{status}";
        } elsif (($q->{headers}{'x-test'} // '') eq $tag) {
            push @out, "call $q->{method} $q->{headers}{host}$q->{path}"
                . ($q->{query} ne '' ? "?$q->{query}" : '')
                . " auth=" . ($q->{headers}{authorization} // '-')
                . " goog=" . ($q->{headers}{'x-goog-api-key'} // '-')
                . " body=" . ($q->{body} // '');
        }
    }
    return join "\n", @out, '';
}

# the gateway's error envelope with this code and message
sub envelope {
    my ($code, $msg) = @_;
    my $j = JSON::PP->new->encode($msg);
    $j =~ s/^"|"$//g;
    return qr/^\{"success":false,"result":\[\],"messages":\[\],"error":\[\{"code":$code,"message":"\Q$j\E"\}\]/;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
        '$TEST_NGINX_PROVIDER_UPSTREAMS' . "\n"
        . ($block->http_config // ''));

    $block->set_value("config", <<'END') unless defined $block->config;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_read_timeout 2s;
        $TEST_NGINX_TLS_CONFIG
    }
END

    if (!defined $block->no_error_log && !defined $block->error_log) {
        $block->set_value("no_error_log", "[error]\n[alert]\n[crit]\n");
    }
});

run_tests();

__DATA__

=== TEST 1: a token is fetched with a signed JWT, then the call goes to the key's project and region
--- request eval
main::chat("google-vertex-ai/google/gemini-2.5-flash")
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 't1@my-proj.iam.gserviceaccount.com') . "\n"
. "x-test: t1\nx-mock: fixture=google-gemini/text.json\n"
--- response_body_filters eval
sub { main::trail("t1") }
--- response_body_like: ^token POST oauth2.googleapis.com/token kid=kid-1 status=200\ncall POST us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent auth=Bearer ya29\.mock-\d+ goog=- body=\{"systemInstruction":\{"parts":\[\{"text":"be brief"\}\]\},"contents":\[\{"role":"user","parts":\[\{"text":"hi"\}\]\}\]\}\n$



=== TEST 2: the answer is a chat.completion, as from AI Studio
--- request eval
main::chat("google-vertex-ai/google/gemini-2.5-flash")
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 't2@my-proj.iam.gserviceaccount.com') . "\n"
. "x-test: t2\nx-mock: fixture=google-gemini/text.json\n"
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"id":"chatcmpl-[0-9A-Z]{26}","object":"chat.completion","created":\d+,"model":"gemini-3-pro-preview","choices":\[\{"index":0,"message":\{"role":"assistant","content":"There are \*\*3\*\* r's in strawberry.*"finish_reason":"stop"



=== TEST 3: the token is cached: three calls, one exchange
--- request eval
[ main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/gemini-2.5-pro"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash") ]
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 't3@my-proj.iam.gserviceaccount.com', region => 'europe-west4', project_id => 'proj-2') . "\n"
. "x-test: t3\nx-mock: fixture=google-gemini/text.json\n"
--- response_body_filters eval
sub { main::trail("t3") }
--- response_body_like eval
[ qr{^token [^\n]+ status=200\ncall POST europe-west4-aiplatform.googleapis.com/v1/projects/proj-2/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent auth=Bearer ya29\.mock-\d+ [^\n]+\n$},
  qr{^token [^\n]+\ncall [^\n]+ auth=(Bearer ya29\.mock-\d+) [^\n]+\ncall POST [^ ]+/models/gemini-2.5-pro:generateContent auth=\1 [^\n]+\n$},
  qr{^token [^\n]+\ncall [^\n]+ auth=(Bearer ya29\.mock-\d+) [^\n]+\ncall [^\n]+ auth=\1 [^\n]+\ncall [^\n]+ auth=\1 [^\n]+\n$} ]



=== TEST 4: a token about to expire is not reused
--- request eval
[ main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash") ]
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 'short@my-proj.iam.gserviceaccount.com') . "\n"
. "x-test: short\nx-mock: fixture=google-gemini/text.json\n"
--- response_body_filters eval
sub { main::trail("short") }
--- response_body_like eval
[ qr{^token [^\n]+\ncall [^\n]+\n$},
  qr{^token [^\n]+\ncall [^\n]+ auth=(Bearer ya29\.mock-\d+) [^\n]+\ntoken [^\n]+\ncall [^\n]+ auth=(?!\1)Bearer ya29\.mock-\d+ [^\n]+\n$} ]



=== TEST 5: streamed: streamGenerateContent with alt=sse, answered as chunks
--- request eval
main::chat("google-vertex-ai/google/gemini-2.5-flash", ',"stream":true')
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 't5@my-proj.iam.gserviceaccount.com') . "\n"
. "x-test: t5\nx-mock: fixture=google-gemini/stream-text.sse;interval=2\n"
--- response_headers
Content-Type: text/event-stream
--- response_body_like: ^data: \{"id":"chatcmpl-.*"delta":\{"role":"assistant","content":""\}.*"finish_reason":"stop".*\n\ndata: \[DONE\]\n\n$



=== TEST 6: the streamed call's URL
--- request eval
main::chat("google-vertex-ai/google/gemini-2.5-flash", ',"stream":true')
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 't6@my-proj.iam.gserviceaccount.com', region => 'global') . "\n"
. "x-test: t6\nx-mock: fixture=google-gemini/stream-text.sse;interval=2\n"
--- response_body_filters eval
sub { main::trail("t6") }
--- response_body_like: ^token [^\n]+\ncall POST aiplatform.googleapis.com/v1/projects/my-proj/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent\?alt=sse auth=Bearer



=== TEST 7: Google refuses the key: 401 in the gateway's envelope, nothing sent to Vertex
--- request eval
main::chat("google-vertex-ai/google/gemini-2.5-flash")
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 'refuse@my-proj.iam.gserviceaccount.com') . "\n"
. "x-test: refuse\n"
--- error_code: 401
--- response_body_like: ^\{"success":false,"result":\[\],"messages":\[\],"error":\[\{"code":2220,"message":"Google refused the service-account credentials: Invalid grant: account not found"\}\],"name":"AiGatewayError","httpCode":401,
--- error_log
Google token exchange failed (HTTP 400): Invalid grant: account not found
--- no_error_log
[alert]
[crit]



=== TEST 8: the token endpoint fails: 502
--- request eval
main::chat("google-vertex-ai/google/gemini-2.5-flash")
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 'broken@my-proj.iam.gserviceaccount.com') . "\n"
--- error_code: 502
--- response_body_like: ^\{"success":false,"result":\[\],"messages":\[\],"error":\[\{"code":2005,"message":"Google's token endpoint failed: unexpected answer"\}\],"name":"AiGatewayError","httpCode":502,
--- error_log
Google token exchange failed (HTTP 500)
--- no_error_log
[alert]
[crit]



=== TEST 9: the token endpoint hangs: 502 after the read timeout, the worker keeps serving
--- request eval
[ main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash") ]
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 'hang@my-proj.iam.gserviceaccount.com') . "\n"
--- error_code eval
[502, 502]
--- response_body_like eval
[main::envelope(2005, q{Google's token endpoint failed: no answer}),
  main::envelope(2005, q{Google's token endpoint failed: no answer}) ]
--- error_log
upstream timed out
--- no_error_log
[alert]
[crit]
--- timeout: 10



=== TEST 10: service-account keys the gateway refuses before any exchange
--- request eval
[ main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash") ]
--- more_headers eval
[ "Authorization: Bearer " . main::sa(region => undef) . "\n",
  "Authorization: Bearer " . main::sa(project_id => undef) . "\n",
  "Authorization: Bearer " . main::sa(private_key => "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n") . "\n",
  "Authorization: Bearer " . main::sa(region => 'US/central') . "\n",
  "Authorization: Bearer ya29.an-access-token\n",
  "" ]
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body_like eval
[main::envelope(2204, q{The service-account JSON needs a "region" key on the Unified API, for example "us-central1"}),
  main::envelope(2204, q{The service-account JSON has no "project_id"}),
  main::envelope(2204, q{"private_key" of the service-account JSON is not a usable RSA private key}),
  main::envelope(2204, q{"region" of the service-account JSON is not a valid name}),
  main::envelope(2204, q{Google Vertex AI on the Unified API takes "Authorization: Bearer <base64 of the service-account JSON with a region key>"; access tokens are only accepted on /google-vertex-ai/ routes}),
  main::envelope(2204, q{Google Vertex AI on the Unified API takes "Authorization: Bearer <base64 of the service-account JSON with a region key>"; access tokens are only accepted on /google-vertex-ai/ routes}) ]
--- no_error_log
[alert]
[crit]



=== TEST 11: only Google's models are translated; no embeddings on Vertex
--- request eval
[ main::chat("google-vertex-ai/anthropic/claude-sonnet-4-5"),
  "POST /v1/acct/gw/compat/embeddings\n" . '{"model":"google-vertex-ai/google/text-embedding-005","input":"x"}' ]
--- more_headers eval
"Authorization: Bearer " . main::sa() . "\n"
--- error_code eval
[400, 400]
--- response_body_like eval
[main::envelope(2207, q{The Unified API translates Google's own models on Vertex AI: "google-vertex-ai/google/{model}"}),
  main::envelope(2207, q{Provider "google-vertex-ai" offers no embeddings on the Unified API}) ]



=== TEST 12: provider-native route: a key is exchanged, a token passes as it is
--- request eval
[ "POST /v1/acct/gw/google-vertex-ai/v1/projects/p9/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent\n{\"contents\":[]}",
  "POST /v1/acct/gw/google-vertex-ai/v1/projects/p9/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent\n{\"contents\":[]}" ]
--- more_headers eval
[ "Authorization: Bearer " . main::sa(client_email => 't12@my-proj.iam.gserviceaccount.com', region => undef) . "\nx-test: t12\n",
  "Authorization: Bearer ya29.client-token\nx-test: t12\n" ]
--- response_body_filters eval
sub { main::trail("t12") }
--- response_body_like eval
[ qr{^token [^\n]+ status=200\ncall POST us-central1-aiplatform.googleapis.com/v1/projects/p9/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent auth=Bearer ya29\.mock-\d+ goog=- body=\{"contents":\[\]\}\n$},
  qr{^token [^\n]+\ncall [^\n]+\ncall POST [^ ]+ auth=Bearer ya29\.client-token goog=- body=\{"contents":\[\]\}\n$} ]



=== TEST 13: a cached answer needs no token: one exchange, one call, then a HIT
--- http_config
ai_gateway_cache_zone vx:1m;
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_cache vx;
        $TEST_NGINX_TLS_CONFIG
    }
--- request eval
[ main::chat("google-vertex-ai/google/gemini-2.5-flash"),
  main::chat("google-vertex-ai/google/gemini-2.5-flash") ]
--- more_headers eval
"Authorization: Bearer " . main::sa(client_email => 't13@my-proj.iam.gserviceaccount.com') . "\n"
. "cf-aig-cache-ttl: 60\nx-test: t13\nx-mock: fixture=google-gemini/text.json\n"
--- response_headers eval
[ "cf-aig-cache-status: MISS", "cf-aig-cache-status: HIT" ]
--- response_body_filters eval
sub { main::trail("t13") }
--- response_body_like eval
[ qr{^token [^\n]+ status=200\ncall [^\n]+\n$},
  qr{^token [^\n]+ status=200\ncall [^\n]+\n$} ]
