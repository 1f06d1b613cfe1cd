//! Auth payloads: the first byte picks the body (register/login credentials, the 2FA
//! login step, refresh, a TOTP or recovery code, password change); the rest is the JSON.
//! Credentials then go through the register path's pure checks (email, password policy).
#![no_main]

use bourse_api::json::parse;
use bourse_api::routes::auth::{Credentials, MfaLogin, PasswordChange, RefreshRequest, CodeRequest};
use bourse_api::ApiError;
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

fn client_error(r: Result<(), ApiError>) {
    if let Err(e) = r {
        assert!(e.status().is_client_error(), "{} {}", e.status(), e.code());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => client_error(parse::<Credentials>(body).map(|c| {
            if let Ok(email) = bourse_identity::normalise_email(&c.email) {
                let _ = bourse_auth::password::check_new_password(
                    c.password.expose_secret(),
                    &[&email],
                );
            }
        })),
        1 => client_error(parse::<MfaLogin>(body).map(drop)),
        2 => client_error(parse::<RefreshRequest>(body).map(drop)),
        3 => client_error(parse::<CodeRequest>(body).map(drop)),
        _ => client_error(parse::<PasswordChange>(body).map(drop)),
    }
});
