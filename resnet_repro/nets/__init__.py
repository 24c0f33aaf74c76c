"""The networks: the paper's plain and residual 6n+2 CIFAR nets with option A/B/C shortcuts
(`cifar_nets`, He et al. 2015, section 4.2), the ImageNet-style ResNet-18/34/50 adapted to
32x32 images (`imagenet_style`), the input normalisation a net was trained with
(`normalization`) and the model.pt file every trained net is stored in (`modelfile`).

A new architecture goes here. Imports only `config` and `results`.
"""
