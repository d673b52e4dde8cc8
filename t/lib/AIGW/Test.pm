# Copyright (C) ngx_ai_gateway contributors

package AIGW::Test;

# Shared setup for the gateway's test files.
#
#   use lib 't/lib';
#   use AIGW::Test;        # starts the mock provider, sets the env below
#
# $TEST_NGINX_PROVIDER_UPSTREAMS: an upstream{} block named after every real
# provider host (api.openai.com, bedrock-runtime.us-east-1.amazonaws.com...)
# pointing at the mock's TLS port, so that the built-in provider table is
# tested as it is (HTTPS, Host, SNI, certificate names) without a network.
# $TEST_NGINX_TLS_CONFIG: trust the test CA.
#
# stream_request() reads a streamed response from the gateway event by event
# and records when each piece arrived, for pacing and abort tests.

use strict;
use warnings;

use Exporter qw(import);
use IO::Socket::INET ();
use IO::Select ();
use JSON::PP ();
use Time::HiRes qw(time sleep);

use AIGW::Mock;

our @EXPORT = qw(stream_request json_decode mock_log mock_reset mock_wait
                 mock_get start_mock);

our @HOSTS = qw(
    api.openai.com api.anthropic.com myres.openai.azure.com
    inference.baseten.co bedrock-runtime.us-east-1.amazonaws.com
    bedrock-runtime.eu-central-1.amazonaws.com
    api.cartesia.ai api.cerebras.ai api.cohere.ai api.deepgram.com
    api.deepseek.com api.elevenlabs.io fal.run queue.fal.run
    generativelanguage.googleapis.com us-central1-aiplatform.googleapis.com
    aiplatform.googleapis.com europe-west4-aiplatform.googleapis.com
    oauth2.googleapis.com api.x.ai api.groq.com
    api-inference.huggingface.co api.ideogram.ai api.mistral.ai
    openrouter.ai api.parallel.ai api.perplexity.ai api.replicate.com
    api.cloudflare.com
);

start_mock();

{
    my $tls = $ENV{TEST_NGINX_MOCK_TLS_PORT};

    $ENV{TEST_NGINX_PROVIDER_UPSTREAMS} = join "\n",
        map { "upstream $_ { server 127.0.0.1:$tls; keepalive 4; }" } @HOSTS;

    $ENV{TEST_NGINX_TLS_CONFIG} =
        "ai_gateway_ssl_trusted_certificate $ENV{TEST_NGINX_CERT_DIR}/ca.crt;";
}

my $JSON = JSON::PP->new->utf8->canonical;

sub json_decode { $JSON->decode(shift) }

# stream_request($raw_request, %opt): sends the raw HTTP request to the
# gateway and returns { head => ..., events => [[t, bytes], ...],
# start => t0, complete => bool }.  With abort_after => N the socket is
# closed after N body reads.

sub stream_request {
    my ($req, %opt) = @_;

    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
        Proto    => 'tcp',
    ) or die "connect: $!";

    my $t0 = time;
    syswrite($sock, $req) or die "write: $!";

    my $sel = IO::Select->new($sock);
    my ($buf, $head, @events) = ('');
    my $deadline = $t0 + ($opt{timeout} || 10);
    my $complete = 0;

    while (time < $deadline) {
        last unless $sel->can_read($deadline - time);

        my $n = sysread($sock, my $chunk, 65536);
        last unless $n;

        if (!defined $head) {
            $buf .= $chunk;
            my $i = index($buf, "\r\n\r\n");
            next if $i < 0;
            $head = substr($buf, 0, $i + 4);
            $chunk = substr($buf, $i + 4);
            next unless length $chunk;
        }

        push @events, [time, $chunk];

        if ($chunk =~ /\r\n0\r\n\r\n\z/ || $chunk =~ /\A0\r\n\r\n\z/) {
            $complete = 1;
            last;
        }

        if ($opt{abort_after} && @events >= $opt{abort_after}) {
            last;
        }
    }

    close $sock;

    return { head => $head, events => \@events, start => $t0,
             complete => $complete };
}

1;
