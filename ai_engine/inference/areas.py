"""Name the hot regions of a heatmap by anatomical zone of the fundus.

Geometry is worked in the crop box's unit square (0..1 both ways), where the fundus circle
is known. Anatomical proportions for a 45° photo: the field radius R is about 3.5 disc
diameters (DD ≈ 0.28 R) and the fovea lies about 2.5 DD temporal to the disc centre.
"""

from __future__ import annotations

import cv2
import numpy as np

from .preprocess import CropBox, FundusGeometry, fov_mask
from .results import DD_PER_RADIUS, ZONE_NAMES, AbnormalArea, Landmarks, normalise_eye

DISC_TO_FOVEA_DD = 2.5
DISC_ZONE_DD = 0.75
MACULA_ZONE_DD = 1.5
PERIPHERY_RADIUS = 0.7
LANDMARK_SIZE = 256
DISC_PROMINENCE = 2.5


def circle_in_box(geometry: FundusGeometry, box: CropBox) -> tuple[tuple[float, float], float]:
    if not geometry.found:
        return (0.5, 0.5), 0.5
    centre = ((geometry.cx - box.x0) / box.width, (geometry.cy - box.y0) / box.height)
    return centre, geometry.radius / box.width


def locate_landmarks(
    square: np.ndarray, geometry: FundusGeometry, box: CropBox, eye: str | None = None
) -> Landmarks:
    """Find the optic disc (brightest large blob) and place the macula temporal to it.

    ``square`` is the box rendered as RGB at any size. Temporal is "away from the disc,
    towards the field centre"; with a central or missing disc the eye side decides
    (a right eye, OD, shows its disc on the right of the photo).
    """
    centre, radius = circle_in_box(geometry, box)
    size = LANDMARK_SIZE
    if square.shape[0] != size:
        square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(square, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mask = fov_mask(geometry, box, size, shrink=0.85)  # rim glare is bright too
    side = normalise_eye(eye)
    dd = DD_PER_RADIUS * radius
    disc: tuple[float, float] | None = None
    found = False
    if mask.sum() > 100:
        # Disc-sized blur minus the local background: uneven illumination and rim glare cancel.
        px = dd * size
        fine = cv2.GaussianBlur(gray, (0, 0), max(1.0, px / 3))
        coarse = cv2.GaussianBlur(
            np.where(mask, gray, float(np.median(gray[mask]))), (0, 0), max(2.0, px * 1.5)
        )
        contrast = fine - coarse
        inside = contrast[mask]
        candidate = np.where(mask, contrast, -np.inf)
        y, x = np.unravel_index(int(np.argmax(candidate)), candidate.shape)
        spread = float(inside.std())
        if (
            spread > 0.5
            and float(contrast[y, x]) > float(np.median(inside)) + DISC_PROMINENCE * spread
        ):
            disc = ((x + 0.5) / size, (y + 0.5) / size)
            found = True
    horizontal = 0.0
    if disc is not None and abs(disc[0] - centre[0]) > 0.1 * radius:
        horizontal = 1.0 if disc[0] < centre[0] else -1.0
    elif side is not None:
        horizontal = -1.0 if side == "OD" else 1.0
    if disc is None and side is not None:
        disc = (centre[0] - horizontal * DISC_TO_FOVEA_DD * dd, centre[1])
    if disc is not None and horizontal != 0.0:
        macula = (disc[0] + horizontal * DISC_TO_FOVEA_DD * dd, disc[1])
    else:
        macula = centre
    return Landmarks(centre=centre, radius=radius, disc=disc, disc_found=found, macula=macula)


def zone_map(landmarks: Landmarks, size: int) -> np.ndarray:
    """Per-pixel zone index (order of ``ZONE_NAMES``) on a ``size × size`` box grid."""
    codes = list(ZONE_NAMES)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    xx, yy = np.meshgrid(coords, coords)
    dd = landmarks.dd
    zones = np.full((size, size), codes.index("posterior_pole"), np.int8)
    from_centre = np.hypot(xx - landmarks.centre[0], yy - landmarks.centre[1])
    if landmarks.disc is not None:
        dx, dy = landmarks.macula[0] - landmarks.disc[0], landmarks.macula[1] - landmarks.disc[1]
        length = float(np.hypot(dx, dy))
        if length > 1e-6:
            ux, uy = dx / length, dy / length
            along = (xx - landmarks.disc[0]) * ux + (yy - landmarks.disc[1]) * uy
            across = np.abs(-(xx - landmarks.disc[0]) * uy + (yy - landmarks.disc[1]) * ux)
            arcade = (
                (across >= 0.6 * dd)
                & (across <= 2.5 * dd)
                & (along >= -1.0 * dd)
                & (along <= 3.5 * dd)
            )
            zones[arcade] = codes.index("vascular_arcade")
    zones[from_centre > PERIPHERY_RADIUS * landmarks.radius] = codes.index("periphery")
    macula = np.hypot(xx - landmarks.macula[0], yy - landmarks.macula[1]) <= MACULA_ZONE_DD * dd
    zones[macula] = codes.index("macula")
    if landmarks.disc is not None:
        disc = np.hypot(xx - landmarks.disc[0], yy - landmarks.disc[1]) <= DISC_ZONE_DD * dd
        zones[disc] = codes.index("optic_disc")
    return zones


def extract_areas(
    heatmap: np.ndarray,
    landmarks: Landmarks,
    geometry: FundusGeometry,
    box: CropBox,
    *,
    hot_fraction: float = 0.5,
    min_area_fraction: float = 0.005,
    secondary_share: float = 0.35,
) -> list[AbnormalArea]:
    """Hot regions (≥ ``hot_fraction`` of the peak, connected, not tiny), named by zone.

    A region takes the zone holding most of its heat, plus any zone holding at least
    ``secondary_share`` of it. Regions come hottest first; a zone is listed once.
    """
    size = heatmap.shape[0]
    field = fov_mask(geometry, box, size)
    heat = np.where(field, np.nan_to_num(heatmap.astype(np.float32)), 0.0)
    peak = float(heat.max())
    if peak <= 1e-6:
        return []
    hot = (heat >= hot_fraction * peak).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    field_area = max(int(field.sum()), 1)
    zones = zone_map(landmarks, size)
    codes = list(ZONE_NAMES)
    found: dict[str, AbnormalArea] = {}
    regions = []
    for index in range(1, count):
        if stats[index, cv2.CC_STAT_AREA] < min_area_fraction * field_area:
            continue
        members = labels == index
        weights = heat[members]
        regions.append((float(weights.max()), index, members, weights))
    for region_peak, index, members, weights in sorted(regions, key=lambda r: -r[0]):
        mass = np.bincount(zones[members], weights=weights, minlength=len(codes))
        order = np.argsort(-mass)
        ys, xs = np.nonzero(members)
        cx = box.x0 + (float(np.average(xs, weights=weights)) + 0.5) / size * box.width
        cy = box.y0 + (float(np.average(ys, weights=weights)) + 0.5) / size * box.height
        centroid = (
            min(max(cx / geometry.width, 0.0), 1.0),
            min(max(cy / geometry.height, 0.0), 1.0),
        )
        for rank, zone_index in enumerate(order):
            if mass[zone_index] <= 0 or (
                rank > 0 and mass[zone_index] < secondary_share * mass.sum()
            ):
                break
            code = codes[zone_index]
            if code not in found:
                zh, en = ZONE_NAMES[code]
                found[code] = AbnormalArea(
                    code=code,
                    zh=zh,
                    en=en,
                    peak=region_peak,
                    area_fraction=float(stats[index, cv2.CC_STAT_AREA]) / field_area,
                    centroid=centroid,
                )
    return list(found.values())
