use super::{join, split_fields};

#[test]
fn fields_round_trip_through_escaping() {
    let fields = ["AUTH", "al|ice", "pa\\ss\nword\r", ""];
    let line = join(&fields);
    assert!(!line.contains('\n'));
    assert_eq!(split_fields(&line), fields);
    assert_eq!(split_fields("A|b||c"), ["A", "b", "", "c"]);
    assert_eq!(split_fields("trailing\\"), ["trailing\\"]);
}
