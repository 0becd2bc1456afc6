//! Checking passwords with PAM (cargo feature `pam`) for users marked `pam` in the users file.
//! PAM decides whether the password is right and the account may log in now; the role still
//! comes from the users file. Opening sessions and setting credentials are not done: the server
//! runs nothing as the user.

use pam_client::conv_mock::Conversation;
use pam_client::{Context, ErrorCode, Flag};

use super::authenticator::{PamCheck, PamCheckError};

/// The PAM service name (`/etc/pam.d/cimguard`; PAM falls back to `/etc/pam.d/other`).
pub const PAM_SERVICE: &str = "cimguard";

/// Checks name and password with PAM. Give it to
/// [`Authenticator::with_pam`](super::Authenticator::with_pam).
#[derive(Clone, Debug)]
pub struct PamAuthenticator {
    service: String,
}

impl PamAuthenticator {
    /// A checker for the service [`PAM_SERVICE`].
    #[must_use]
    pub fn new() -> Self {
        PamAuthenticator::with_service(PAM_SERVICE)
    }

    /// A checker for another PAM service.
    #[must_use]
    pub fn with_service(service: &str) -> Self {
        PamAuthenticator {
            service: service.to_owned(),
        }
    }
}

impl Default for PamAuthenticator {
    fn default() -> Self {
        PamAuthenticator::new()
    }
}

impl PamCheck for PamAuthenticator {
    fn check(&self, name: &str, password: &str) -> Result<bool, PamCheckError> {
        let conversation = Conversation::with_credentials(name, password);
        let mut context = Context::new(&self.service, Some(name), conversation)
            .map_err(|error| PamCheckError(error.to_string()))?;
        let flags = Flag::SILENT | Flag::DISALLOW_NULL_AUTHTOK;
        let result = context
            .authenticate(flags)
            .and_then(|()| context.acct_mgmt(flags));
        match result {
            Ok(()) => Ok(true),
            Err(error) => match error.code() {
                // The password or the account is refused: a failed login like any other.
                ErrorCode::AUTH_ERR
                | ErrorCode::USER_UNKNOWN
                | ErrorCode::PERM_DENIED
                | ErrorCode::CRED_INSUFFICIENT
                | ErrorCode::MAXTRIES
                | ErrorCode::ACCT_EXPIRED
                | ErrorCode::NEW_AUTHTOK_REQD
                | ErrorCode::AUTHTOK_EXPIRED => Ok(false),
                _ => Err(PamCheckError(error.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_unknown_user() {
        // Whatever the machine's PAM policy, a user that does not exist does not log in (PAM
        // either refuses or fails; both keep the door shut).
        let checked = PamAuthenticator::new().check("cimguard-no-such-user", "password");
        assert_ne!(checked, Ok(true));
    }
}
