use super::normalize_answer;

#[test]
fn answers_are_normalised() {
    assert_eq!(&*normalize_answer("  Rex   the\tDOG "), "rex the dog");
    assert_eq!(&*normalize_answer("Ｒｅｘ"), "rex");
}
