"""One module per system; importing this package registers every model."""

from tf_ecg.models import effnetv2, inception1d, kachuee_cnn, kaggle_conv1d, loo_conv1d, mitbih_resnext, pulse2pulse, ribeiro  # noqa: F401 (registration)
