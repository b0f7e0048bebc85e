use super::*;

#[test]
fn qr_codes_draw_two_rows_per_line_with_a_quiet_zone() {
    let uri = "otpauth://totp/Sesame:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Sesame";
    let lines = qr_lines(uri).unwrap();
    let size = qrcodegen::QrCode::encode_text(uri, qrcodegen::QrCodeEcc::Medium)
        .unwrap()
        .size() as usize;
    assert_eq!(lines.len(), (size + 4).div_ceil(2));
    assert!(lines.iter().all(|l| l.chars().count() == size + 4));
    // The quiet zone is light: the first line is all full blocks.
    assert!(lines[0].chars().all(|c| c == '█'), "{}", lines[0]);
    // The top-left finder pattern starts dark right after the quiet zone.
    let row: Vec<char> = lines[1].chars().collect();
    assert_eq!(row[2], ' ', "{}", lines[1]);
    // Every module reads back from the characters: light is drawn, dark is blank.
    let qr = qrcodegen::QrCode::encode_text(uri, qrcodegen::QrCodeEcc::Medium).unwrap();
    let grid: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
    for y in -2..qr.size() + 2 {
        for x in -2..qr.size() + 2 {
            let c = grid[((y + 2) / 2) as usize][(x + 2) as usize];
            let light = if (y + 2) % 2 == 0 {
                matches!(c, '█' | '▀')
            } else {
                matches!(c, '█' | '▄')
            };
            assert_eq!(light, !qr.get_module(x, y), "module ({x}, {y})");
        }
    }
    assert!(qr_lines(&"x".repeat(8000)).is_none());
}

#[test]
fn secrets_are_grouped_for_typing() {
    assert_eq!(group_secret("ABCDEFGHIJ"), "ABCD EFGH IJ");
    assert_eq!(group_secret(""), "");
}
