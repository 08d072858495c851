"""The galaxy of interest among a GALFIT block's components (core.io.galfit.choose_component,
read_block) and what headers say about pixels (core.io.calibration)."""

import math

import numpy as np
import pytest
from astropy.io import fits

from core.io.calibration import image_unit, pixel_scale, pixel_type
from core.io.galfit import GalfitBlockError, read_block
from tests.blocks import tan_wcs, write_multi_block

SKY = ("sky", 0.01)
CENTRE = ("sersic", 31.4, 30.8, 21.0, 4.0, 2.0)     # the target, 0.5 px from the centre (31, 31)
NEIGHBOUR = ("sersic", 12.0, 48.0, 20.5, 3.0, 1.0)  # brighter, far from the centre


def test_sky_first_as_van_der_wel(tmp_path):
    b = read_block(write_multi_block(tmp_path / "b.fits", [SKY, CENTRE, NEIGHBOUR]))
    assert b.component == 2 and b.value("XC") == 31.4 and b.value("SKY") == 0.01
    assert b.choice.how == "centre" and b.choice.flags == ()
    assert b.choice.distance == pytest.approx(math.hypot(0.4, 0.2))
    assert [c.kind for c in b.components] == ["sky", "sersic", "sersic"]
    assert [(c.number, c.position) for c in b.neighbours] == [(3, (12.0, 48.0))]  # the sky has no centre


def test_neighbour_first_is_not_taken(tmp_path):
    """Another team's fit listing a neighbour first: the first Sérsic (the old rule) is the neighbour."""
    b = read_block(write_multi_block(tmp_path / "b.fits", [NEIGHBOUR, SKY, CENTRE]))
    assert b.component == 3 and (b.value("XC"), b.value("YC")) == (31.4, 30.8) and b.value("MAG") == 21.0
    assert b.choice.flags == ()


def test_off_centre_target_is_flagged_far(tmp_path):
    b = read_block(write_multi_block(tmp_path / "b.fits", [SKY, ("sersic", 40.0, 31.0, 21.0, 4.0, 2.0)]))
    assert b.component == 2 and b.choice.distance == pytest.approx(9.0)
    assert b.choice.flags == ("goi_component_far",)
    assert b.choice.note == ("no sersic component within 5 px of the block centre: took component 2, 9.0 px away")
    assert read_block(b.path, radius=10).choice.flags == ()  # the radius is configurable


def test_two_near_the_centre_is_ambiguous(tmp_path):
    pair = [CENTRE, ("sersic", 34.0, 33.0, 21.5, 2.0, 1.0)]
    b = read_block(write_multi_block(tmp_path / "b.fits", [SKY, *pair]))
    assert b.component == 2 and b.choice.flags == ("goi_component_ambiguous",)
    assert "sersic components 2 (0.4 px) and 3 (3.6 px) lie within 5 px of the block centre; took 2" in b.choice.note


def test_a_catalog_names_the_component(tmp_path):
    path = write_multi_block(tmp_path / "b.fits", [SKY, CENTRE, NEIGHBOUR])
    b = read_block(path, component=3)
    assert b.component == 3 and b.value("XC") == 12.0 and b.choice.how == "catalog"
    assert b.choice.flags == ("goi_component_far",) and "named by the catalog lies 25.5 px" in b.choice.note
    with pytest.raises(GalfitBlockError, match="names component 1, which is a 'sky' component"):
        read_block(path, component=1)
    with pytest.raises(GalfitBlockError, match="names component 7, which is not in the model header"):
        read_block(path, component=7)


def test_catalog_radec_through_the_wcs(tmp_path):
    shape = (61, 61)
    wcs = tan_wcs(shape, 0.06)
    path = write_multi_block(tmp_path / "b.fits", [SKY, CENTRE, NEIGHBOUR], shape, wcs=wcs)
    ra, dec = wcs.pixel_to_world_values(12.0 - 1, 48.0 - 1)  # the neighbour's position
    b = read_block(path, radec=(float(ra), float(dec)))
    assert b.component == 3 and b.choice.how == "radec" and b.choice.distance == pytest.approx(0.0, abs=1e-6)
    ra, dec = wcs.pixel_to_world_values(31.0 - 1, 31.0 - 1)
    assert read_block(path, radec=(float(ra), float(dec))).component == 2
    # without a WCS the catalog position cannot be used: the centre decides
    plain = write_multi_block(tmp_path / "p.fits", [SKY, CENTRE, NEIGHBOUR], shape)
    c = read_block(plain, radec=(float(ra), float(dec)))
    assert c.component == 2 and c.choice.how == "centre"


def test_positions_of_a_fitted_section_are_shifted_to_the_block(tmp_path):
    """GALFIT writes positions in the input image's frame; the block holds the section."""
    path = write_multi_block(tmp_path / "b.fits", [SKY, CENTRE, NEIGHBOUR], fitsect=(101, 201))
    h = fits.getheader(path, 2)
    assert h["FITSECT"] == "[101:161,201:261]" and h["2_XC"].startswith("131.4000")
    b = read_block(path)
    assert b.offset == (100, 200) and b.component == 2
    assert (b.value("XC"), b.value("YC")) == (pytest.approx(31.4), pytest.approx(30.8))
    iy, ix = np.unravel_index(np.argmax(b.model[20:42, 20:42]), (22, 22))
    assert (ix + 21, iy + 21) == (31, 31)  # the galaxy's model peaks where the shifted position says


def test_a_block_as_large_as_the_image_is_not_shifted(tmp_path):
    path = write_multi_block(tmp_path / "b.fits", [SKY, CENTRE])
    with fits.open(path, mode="update") as h:
        h[2].header["FITSECT"] = "[10:50,10:50]"  # a fitter recording the box it fitted
    b = read_block(path)
    assert b.offset == (0, 0) and b.value("XC") == 31.4


def test_pixel_scale_from_wcs_or_keys():
    shape = (20, 20)
    cd = tan_wcs(shape, 0.03).to_header()
    assert pixel_scale(cd)[0] == pytest.approx(0.03) and pixel_scale(cd)[1].startswith("WCS (")
    pc = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": 1.0, "CDELT2": 1.0,
                      "PC1_1": -1.6667e-5, "PC2_2": 1.6667e-5, "CUNIT1": "deg", "CUNIT2": "deg"})
    assert pixel_scale(pc)[0] == pytest.approx(0.06, rel=1e-3)  # PetroFit's form: PC in degrees, CDELT 1
    assert pixel_scale(fits.Header({"CDELT1": 1.0, "CDELT2": 1.0}))[1] == ""  # no celestial axes: no scale
    assert pixel_scale(fits.Header({"PLATESCL": 0.1})) == (0.1, "PLATESCL")
    assert pixel_scale(None, fits.Header({"PIXSCALE": "bad"}), fits.Header({"PIXSCAL1": -0.05})) == (0.05,
                                                                                                  "PIXSCAL1")
    assert math.isnan(pixel_scale(fits.Header({"PIXSCALE": 1e6}))[0])  # not a pixel scale


def test_units_and_pixel_types():
    assert image_unit(fits.Header(), fits.Header({"BUNIT": "ELECTRONS/S "})) == "ELECTRONS/S"
    assert pixel_type(fits.Header({"BITPIX": -64})) == "float64"
    assert pixel_type(fits.Header({"BITPIX": 32})) == "int32"
    assert pixel_type(fits.Header({"BITPIX": 16, "BSCALE": 1e-3, "BZERO": 1.0})) == "int16 (BSCALE 0.001, BZERO 1)"


def test_integer_blocks_read_as_physical_floats(tmp_path):
    comps = [SKY, CENTRE]
    floats = read_block(write_multi_block(tmp_path / "f.fits", comps, dtype=np.float64))
    ints = read_block(write_multi_block(tmp_path / "i.fits", comps, dtype=np.int16, scale=(2e-4, 0.5)))
    assert ints.input.dtype.kind == "f" and ints.input.dtype.isnative
    np.testing.assert_allclose(ints.input, floats.input, atol=1e-4 + 1e-6)  # half a quantum
    np.testing.assert_allclose(ints.model, floats.model, atol=1e-4 + 1e-6)
    assert pixel_type(ints.headers["input"]) == "int16 (BSCALE 0.0002, BZERO 0.5)"


def test_real_headers(shared_data):
    block = read_block(shared_data / "galfit_goodss_f606w" / "imgblock.fits", pixels=False)
    # GALFIT copied gal.fits' header (its CD matrix: 0.05"/px) into the block; the feedme's K) says 0.038
    scale, source = pixel_scale(block.headers["input"], block.headers["model"])
    assert source == "WCS (CD matrix)" and scale == pytest.approx(0.05, abs=1e-4)
    assert image_unit(block.headers["input"]) == "ELECTRONS" and block.choice.flags == ()
    petro = shared_data / "hst_abell2744_f105w"
    for name in ("spiral_galaxy", "dwarf_galaxy", "cd_galaxy", "group_of_galaxies"):
        h = fits.getheader(petro / f"abell_2744_{name}_f105w.fits.gz")
        assert pixel_scale(h)[0] == pytest.approx(0.06, abs=1e-4), name
        assert image_unit(h).lower().replace(" ", "") in ("electron/s", "electrons/s"), name
    for f in ("hst_aegis_acs/AEGIS_F606w_images_01.fits", "statmorph_slice/slice.fits"):
        assert math.isnan(pixel_scale(fits.getheader(shared_data / f))[0])  # their headers do not say
    assert pixel_type(fits.getheader(shared_data / "statmorph_slice/slice.fits", 1)) == "int32"
