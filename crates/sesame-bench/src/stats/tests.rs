use super::{ks_two_sample, q_ks};

#[test]
fn the_kolmogorov_tail_matches_its_table() {
    // The classic critical values: λ = 1.358 at 5 %, 1.628 at 1 %, 1.224 at 10 %.
    assert!((q_ks(1.358) - 0.05).abs() < 5e-4, "{}", q_ks(1.358));
    assert!((q_ks(1.628) - 0.01).abs() < 2e-4, "{}", q_ks(1.628));
    assert!((q_ks(1.224) - 0.10).abs() < 1e-3, "{}", q_ks(1.224));
    assert_eq!(q_ks(0.0), 1.0);
    assert!(q_ks(5.0) < 1e-20);
}

#[test]
fn identical_samples_agree_and_disjoint_ones_do_not() {
    let a: Vec<f64> = (0..1000).map(f64::from).collect();
    let same = ks_two_sample(&a, &a);
    assert_eq!(same.d, 0.0);
    assert_eq!(same.p, 1.0);
    let b: Vec<f64> = (0..1000).map(|x| f64::from(x) + 1000.0).collect();
    let apart = ks_two_sample(&a, &b);
    assert_eq!(apart.d, 1.0);
    assert!(apart.p < 1e-100, "{}", apart.p);
}

#[test]
fn the_statistic_is_the_largest_gap_between_the_distributions() {
    // a = {1, 2, 3, 4}, b = {3, 4, 5, 6}: after 2 the distributions are 1/2 and 0.
    let t = ks_two_sample(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]);
    assert_eq!(t.d, 0.5);
    // Ties step together: equal samples give no distance.
    let tied = ks_two_sample(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]);
    assert!((tied.d - 1.0 / 3.0).abs() < 1e-12, "{}", tied.d);
    // A shift of a tenth of the spread in 1,000 + 1,000 samples is not significant; a shift
    // of half of it is.
    let a: Vec<f64> = (0..1000).map(|x| f64::from(x % 100)).collect();
    let small: Vec<f64> = a.iter().map(|x| x + 1.0).collect();
    let large: Vec<f64> = a.iter().map(|x| x + 50.0).collect();
    assert!(ks_two_sample(&a, &small).p > 0.5);
    assert!(ks_two_sample(&a, &large).p < 1e-10);
}
