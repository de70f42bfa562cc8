"""LIP's 20 human-parsing classes (Look Into Person, Gong et al. 2017): the labels JPPNet and MediaPipeParsing
write, the dataset's image-parse files hold, and CP-VTON's agnostic representation reads.

Left and right are the person's: LEFT_ARM is on the image's right in a frontal photo."""
from enum import IntEnum


class Lip(IntEnum):
    BACKGROUND = 0
    HAT = 1
    HAIR = 2
    GLOVE = 3
    SUNGLASSES = 4
    UPPER_CLOTHES = 5
    DRESS = 6
    COAT = 7
    SOCKS = 8
    PANTS = 9
    JUMPSUITS = 10
    SCARF = 11
    SKIRT = 12
    FACE = 13
    LEFT_ARM = 14
    RIGHT_ARM = 15
    LEFT_LEG = 16
    RIGHT_LEG = 17
    LEFT_SHOE = 18
    RIGHT_SHOE = 19


LIP_CLASS_COUNT = len(Lip)
# the names LIP's own files use, in label order (human_parsing's summary line)
LABEL_NAMES = ('Background', 'Hat', 'Hair', 'Glove', 'Sunglasses', 'UpperClothes', 'Dress', 'Coat',
               'Socks', 'Pants', 'Jumpsuits', 'Scarf', 'Skirt', 'Face', 'Left-arm', 'Right-arm',
               'Left-leg', 'Right-leg', 'Left-shoe', 'Right-shoe')
# the person's left limbs; each right one is the next label
LEFT_LIMBS = (Lip.LEFT_ARM, Lip.LEFT_LEG, Lip.LEFT_SHOE)


def mirrored(label):
    """The label of the same pixel in the mirrored photo: a left limb becomes the right one and back."""
    if label in LEFT_LIMBS:
        return Lip(label + 1)
    if label - 1 in LEFT_LIMBS:
        return Lip(label - 1)
    return Lip(label)
