//! WHIP/WHEP request checks as plain functions (RFC 9725 §4), tested without sockets.

use axum::http::StatusCode;
use relay_webrtc::EdgeError;

use crate::token::{verify, Claims, TokenError, TokenRole};

/// An HTTP error with a short plain-text explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

/// Check the `Authorization` header for `lesson` and one of `roles`.
pub fn authorize(
    secret: &str,
    header: Option<&str>,
    lesson: &str,
    roles: &[TokenRole],
    allowed: Option<&[String]>,
    now_unix: u64,
) -> Result<Claims, ApiError> {
    let Some(h) = header else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing token: send \"Authorization: Bearer <token>\" (make one with `classroom-relay token`)",
        ));
    };
    let Some(token) = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
    else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the Authorization header must be \"Bearer <token>\"",
        ));
    };
    let claims = verify(secret, token.trim(), now_unix)
        .map_err(|e: TokenError| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    if claims.lesson != lesson {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this token is for lesson {:?}, not {lesson:?}",
                claims.lesson
            ),
        ));
    }
    if !roles.contains(&claims.role) {
        let name = |r: &TokenRole| match r {
            TokenRole::Teacher => "teacher",
            TokenRole::Classroom => "classroom",
        };
        let need: Vec<&str> = roles.iter().map(name).collect();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this is a {} token; this endpoint needs a {} token",
                name(&claims.role),
                need.join(" or ")
            ),
        ));
    }
    if let Some(list) = allowed {
        if !list.iter().any(|l| l == lesson) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("lesson {lesson:?} is not served by this relay"),
            ));
        }
    }
    Ok(claims)
}

/// RFC 9725 §4.2: the offer is `application/sdp`.
pub fn check_content_type(ct: Option<&str>) -> Result<(), ApiError> {
    let base = ct.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if base.as_deref() == Some("application/sdp") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the offer must be sent as Content-Type: application/sdp (got {})",
                ct.unwrap_or("none")
            ),
        ))
    }
}

/// Map an edge error to its status.
pub fn edge_error(e: EdgeError) -> ApiError {
    let status = match &e {
        EdgeError::BadSdp(_) | EdgeError::NothingToForward(_) => StatusCode::BAD_REQUEST,
        EdgeError::Conflict(_) => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::sign;

    const S: &str = "test-secret-0123456789";

    fn tok(lesson: &str, role: TokenRole, exp: u64) -> String {
        format!(
            "Bearer {}",
            sign(S, &Claims::new(lesson, role, Some("s1"), exp))
        )
    }

    #[test]
    fn statuses() {
        let ok = tok("math", TokenRole::Teacher, 100);
        assert!(authorize(S, Some(&ok), "math", &[TokenRole::Teacher], None, 10).is_ok());
        let st = |r: Result<Claims, ApiError>| r.unwrap_err().status;
        assert_eq!(
            st(authorize(S, None, "math", &[TokenRole::Teacher], None, 10)),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            st(authorize(
                S,
                Some("Basic x"),
                "math",
                &[TokenRole::Teacher],
                None,
                10
            )),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            st(authorize(
                S,
                Some(&ok),
                "math",
                &[TokenRole::Teacher],
                None,
                100
            )),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            st(authorize(
                "other-secret-012345",
                Some(&ok),
                "math",
                &[TokenRole::Teacher],
                None,
                1
            )),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            st(authorize(
                S,
                Some(&ok),
                "bio",
                &[TokenRole::Teacher],
                None,
                10
            )),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            st(authorize(
                S,
                Some(&ok),
                "math",
                &[TokenRole::Classroom],
                None,
                10
            )),
            StatusCode::FORBIDDEN
        );
        let allowed = vec!["bio".to_string()];
        assert_eq!(
            st(authorize(
                S,
                Some(&ok),
                "math",
                &[TokenRole::Teacher],
                Some(&allowed),
                10
            )),
            StatusCode::NOT_FOUND
        );
        assert!(check_content_type(Some("application/sdp; charset=utf-8")).is_ok());
        assert_eq!(
            check_content_type(Some("text/plain")).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            check_content_type(None).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            edge_error(EdgeError::Conflict("m".into())).status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            edge_error(EdgeError::BadSdp("x".into())).status,
            StatusCode::BAD_REQUEST
        );
    }
}
