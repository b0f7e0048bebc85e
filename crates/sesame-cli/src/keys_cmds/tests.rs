use super::*;

#[test]
fn safety_numbers_print_in_two_rows() {
    let n = "00001 00002 00003 00004 00005 00006 00007 00008 00009 00010 00011 00012";
    assert_eq!(
        safety_lines(n),
        vec![
            "00001 00002 00003 00004 00005 00006",
            "00007 00008 00009 00010 00011 00012"
        ]
    );
}

#[test]
fn banners_are_loud() {
    let b = banner("KEYS CHANGED");
    assert!(b.starts_with("!!!!"));
    assert!(b.contains("\nKEYS CHANGED\n"));
}
