use super::*;

fn class(school: &str, ip: [u8; 4]) -> Who {
    Who {
        lesson: "math".into(),
        school: Some(school.into()),
        teacher: None,
        address: IpAddr::from(ip),
    }
}

fn limits() -> Limits {
    Limits {
        school_sessions: 3,
        school_new_per_second: 100,
        address_new_per_second: 100,
        ..Limits::default()
    }
}

#[test]
fn concurrent_school_limit_counts_pending_and_frees_on_end() {
    let t0 = Instant::now();
    let mut s = Sessions::new(limits());
    let w = class("s1", [10, 0, 0, 1]);
    let a = s.admit(t0, &w).unwrap();
    let b = s.admit(t0, &w).unwrap();
    let c = s.admit(t0, &w).unwrap();
    let r = s.admit(t0, &w).unwrap_err();
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.reason, "school_sessions");
    assert!(
        r.message.contains("limits.school_sessions"),
        "{}",
        r.message
    );
    // Another school is not affected.
    let other = s.admit(t0, &class("s2", [10, 0, 0, 1])).unwrap();
    s.release(other);
    s.confirm(a, PeerId(1), "r1".into());
    s.release(b);
    s.confirm(c, PeerId(3), "r3".into());
    assert_eq!(s.open(), 2);
    assert_eq!(s.resource("r1").map(|r| r.peer), Some(PeerId(1)));
    s.ended(PeerId(1));
    assert_eq!(s.resource("r1"), None);
    assert_eq!(s.open(), 1);
    let d = s.admit(t0, &w).unwrap();
    s.confirm(d, PeerId(4), "r4".into());
    assert_eq!(s.refused()["school_sessions"], 1);
}

#[test]
fn rates_allow_a_burst_then_refill() {
    let t0 = Instant::now();
    let mut s = Sessions::new(Limits {
        school_new_per_second: 2,
        ..Limits::default()
    });
    let w = class("s1", [10, 0, 0, 1]);
    // A burst of twice the rate, then refused, then one more after half a second.
    for _ in 0..4 {
        let t = s.admit(t0, &w).unwrap();
        s.release(t);
    }
    let r = s.admit(t0, &w).unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::TOO_MANY_REQUESTS, "school_rate")
    );
    assert_eq!(r.retry_after, Duration::from_secs(1));
    let t = s.admit(t0 + Duration::from_millis(500), &w).unwrap();
    s.release(t);
    assert!(s.admit(t0 + Duration::from_millis(500), &w).is_err());
}

#[test]
fn the_relay_full_or_draining_is_503_with_retry_after() {
    let t0 = Instant::now();
    let mut s = Sessions::new(Limits {
        sessions: 2,
        lessons: 1,
        ..Limits::default()
    });
    let t = s.admit(t0, &class("s1", [10, 0, 0, 1])).unwrap();
    s.confirm(t, PeerId(1), "a".into());
    let other_lesson = Who {
        lesson: "bio".into(),
        ..class("s1", [10, 0, 0, 2])
    };
    let r = s.admit(t0, &other_lesson).unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::SERVICE_UNAVAILABLE, "relay_lessons")
    );
    let t = s.admit(t0, &class("s2", [10, 0, 0, 2])).unwrap();
    s.confirm(t, PeerId(2), "b".into());
    let r = s.admit(t0, &class("s3", [10, 0, 0, 3])).unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::SERVICE_UNAVAILABLE, "relay_sessions")
    );
    assert!(!s.accepting());
    s.ended(PeerId(2));
    assert!(s.accepting());
    s.start_draining();
    let r = s.admit(t0, &class("s3", [10, 0, 0, 3])).unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    );
    assert!(r.retry_after > Duration::ZERO);
    assert!(!s.accepting());
}

#[test]
fn address_and_teacher_limits() {
    let t0 = Instant::now();
    let mut s = Sessions::new(Limits {
        address_sessions: 2,
        teacher_sessions: 2,
        ..Limits::default()
    });
    let teacher = Who {
        lesson: "math".into(),
        school: None,
        teacher: Some("sid-1".into()),
        address: IpAddr::from([10, 0, 0, 9]),
    };
    let a = s.admit(t0, &teacher).unwrap();
    let _b = s.admit(t0, &teacher).unwrap();
    let r = s.admit(
        t0,
        &Who {
            address: IpAddr::from([10, 0, 0, 8]),
            ..teacher.clone()
        },
    );
    assert_eq!(r.unwrap_err().reason, "teacher_sessions");
    let r = s.admit(t0, &class("s1", [10, 0, 0, 9])).unwrap_err();
    assert_eq!(
        (r.status, r.reason),
        (StatusCode::TOO_MANY_REQUESTS, "address_sessions")
    );
    s.release(a);
    assert!(s.admit(t0, &class("s1", [10, 0, 0, 9])).is_ok());
}

#[test]
fn a_session_that_ends_before_it_is_confirmed_is_not_kept() {
    let t0 = Instant::now();
    let mut s = Sessions::new(limits());
    let t = s.admit(t0, &class("s1", [10, 0, 0, 1])).unwrap();
    s.ended(PeerId(7));
    s.confirm(t, PeerId(7), "r".into());
    assert_eq!(s.open(), 0);
    assert_eq!(s.resource("r"), None);
    // Its school's count went back to zero: three more fit.
    for i in 0..3 {
        let t = s.admit(t0, &class("s1", [10, 0, 0, 1])).unwrap();
        s.confirm(t, PeerId(10 + i), format!("x{i}"));
    }
}

#[test]
fn idle_rate_buckets_are_forgotten() {
    let t0 = Instant::now();
    let mut s = Sessions::new(Limits {
        new_sessions_per_second: 100_000,
        school_new_per_second: 100_000,
        ..Limits::default()
    });
    for i in 0..(BUCKETS_KEPT as u32 + 10) {
        let ip = IpAddr::from(i.to_be_bytes());
        let t = s
            .admit(t0, &class("s1", [0, 0, 0, 0]).with_address(ip))
            .unwrap();
        s.release(t);
    }
    let t = s
        .admit(t0 + Duration::from_secs(60), &class("s2", [1, 1, 1, 1]))
        .unwrap();
    s.release(t);
    assert!(s.buckets.len() < 10, "{} buckets kept", s.buckets.len());
}

impl Who {
    fn with_address(mut self, a: IpAddr) -> Who {
        self.address = a;
        self
    }
}
