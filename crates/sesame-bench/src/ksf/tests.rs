use super::*;

#[test]
fn matches_opaque_kes_argon2_and_memoizes() {
    let params = KsfParams {
        memory: 8192,
        iterations: 5,
        parallelism: 1,
    };
    let input = GenericArray::<u8, generic_array::typenum::U64>::clone_from_slice(&[7u8; 64]);
    let reference = {
        let a = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8192, 5, 1, None).unwrap(),
        );
        <argon2::Argon2<'_> as Ksf>::hash(&a, input).unwrap()
    };
    let ksf = CachingKsf::new(params);
    let (h0, _) = stats();
    assert_eq!(ksf.hash(input).unwrap(), reference);
    assert_eq!(ksf.hash(input).unwrap(), reference);
    assert!(stats().0 > h0, "the second call is a hit");
}
