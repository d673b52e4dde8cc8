# Copyright (C) ngx_ai_gateway contributors

# Every request case of the translators' unit tests, through nginx: the
# OpenAI request sent to /compat/chat/completions, and the exact body the
# provider receives (or the exact 400 the client gets), for Anthropic and
# Gemini.  The cases are t/unit/cases/request/{name}.json, with expected
# {name}.anthropic and {name}.gemini.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use JSON::PP ();

repeat_each(1);
no_shuffle();

our (@REQ, @HDR, @CASE);

sub slurp {
    open my $f, '<:raw', $_[0] or die "$_[0]: $!";
    local $/;
    my $s = <$f>;
    $s =~ s/\n\z//;
    return $s;
}

for my $json (sort glob 't/unit/cases/request/*.json') {
    (my $name = $json) =~ s{.*/|\.json$}{}g;
    my $body = slurp($json);

    for my $p ([ 'anthropic', 'anthropic', 'anthropic/text.json' ],
               [ 'gemini', 'google', 'google-gemini/text.json' ])
    {
        my $expect = "t/unit/cases/request/$name.$p->[0]";
        next unless -f $expect;

        # the unit tests translate with the model "test-model"
        my $req = JSON::PP->new->decode($body);
        next unless ref $req eq 'HASH' && defined $req->{model};

        (my $b = $body) =~ s/"model"\s*:\s*"[^"]*"/"model": "$p->[1]\/test-model"/;

        push @REQ, "POST /v1/acct/gw/compat/chat/completions\n$b";
        push @HDR, "Authorization: Bearer k\nx-mock: fixture=$p->[2]";
        push @CASE, [ "$name.$p->[0]", slurp($expect) ];
    }
}

add_response_body_check(sub {
    my ($block, $body, $i, $repeated, $dry_run) = @_;

    return if $dry_run;

    my ($name, $expect) = @{ $CASE[$i] };

    if ($expect =~ /^400 (.*)/s) {
        my $msg = $1;
        my $r = eval { JSON::PP->new->utf8->decode($body) } || {};
        is($r->{error}[0]{message}, $msg, "$name: the client gets the 400");
        return;
    }

    my $log = mock_log();
    my $q = $log->{requests}[-1];
    my $sent = $q ? $q->{body} : '';

    # the body is the first line (a second one lists the flags the
    # translator set); the mock decodes the body as UTF-8 text
    $expect =~ s/\n.*//s;
    utf8::decode($expect);

    is($sent, $expect, "$name: the provider gets the expected body");
});

run_tests();

__DATA__

=== TEST 1: every unit request case through nginx
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider google-ai-studio http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
[ @main::REQ ]
--- more_headers eval
[ @main::HDR ]
--- error_code eval
[ map { $_->[1] =~ /^400 / ? 400 : 200 } @main::CASE ]
--- no_error_log
[alert]
[crit]
